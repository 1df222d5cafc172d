//! Hafnium's paravirtualised interrupt interface, which SPs under spmc (or
//! Hafnium) call with `smc`/`hvc`: the ids are Hafnium's (its documentation,
//! "Paravirtualized interfaces"; the same numbers as its `vmapi/hf/call.h`),
//! not FF-A function ids.  Defined once for the SPMC (server) and the SP
//! runtime (client).

/// Enables a virtual interrupt (spmc accepts it: interrupts come enabled from the manifest).
pub const HF_INTERRUPT_ENABLE: u32 = 0xff03;
/// The next pending virtual interrupt id of the calling context, which stops being pending.
pub const HF_INTERRUPT_GET: u32 = 0xff04;
/// Ends an interrupt: x1 = virtual id, x2 = physical id.
pub const HF_INTERRUPT_DEACTIVATE: u32 = 0xff08;
/// Reconfigures an interrupt: x1 = id, x2 = command, x3 = value (Hafnium's
/// "Paravirtualized interfaces"; OP-TEE's hfic driver enables and disables
/// interrupts with command [`HF_INT_RECONFIGURE_STATUS`]).
pub const HF_INTERRUPT_RECONFIGURE: u32 = 0xff09;
/// HF_INTERRUPT_RECONFIGURE command: x3 = 1 enable, 0 disable.
pub const HF_INT_RECONFIGURE_STATUS: u64 = 2;
/// HF_INTERRUPT_GET's answer when nothing is pending.
pub const HF_INVALID_INTID: u64 = 0xffff_ffff;
/// The virtual interrupt id of a managed exit (Hafnium's HF_MANAGED_EXIT_INTID).
pub const MANAGED_EXIT_INTID: u32 = 4;
/// The Notification Pending Interrupt, a virtual interrupt for SPs
/// (Hafnium's HF_NOTIFICATION_PENDING_INTID; FFA_FEATURES(NPI) reports it).
pub const NOTIFICATION_PENDING_INTID: u32 = 5;
/// The virtual interrupt id of an SP's (emulated) EL1 physical timer
/// (Hafnium's HF_VIRTUAL_TIMER_INTID).
pub const VIRTUAL_TIMER_INTID: u32 = 3;
