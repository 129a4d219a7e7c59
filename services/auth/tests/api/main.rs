//! The auth service over real HTTP, on the backend of this run (PEERMESH_TEST_BACKEND).

mod conformance;
mod db;
mod jwks;
