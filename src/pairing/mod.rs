//! Pairing: codes, the PAKE exchange, offline codes and the relay client.
