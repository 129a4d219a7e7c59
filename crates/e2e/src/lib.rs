//! Only tests live here (tests/gateway.rs).
