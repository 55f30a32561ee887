//! The pairing relay server: the original-compatible API and the PAKE mailbox, over pluggable stores.
