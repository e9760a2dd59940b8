//! Test tooling for certradius, kept out of the server's dependencies: the supplicant and NAS
//! peer (`peer`), the fuzz harness shared by the cargo-fuzz targets and `tests/corpus_replay.rs`
//! (`fuzz`), the core built for the testbed's in-memory measurements (`in_memory`), a switch's MAC Authentication Bypass requests (`mab`), the NAS side of RadSec and RADIUS/TCP (`radsec`), outside tools and the OCSP
//! responder (`outside`), and the test PKI generator (re-exported from `certradius-pki`).

pub mod acct;
pub mod fuzz;
pub mod in_memory;
pub mod mab;
pub mod outside;
pub mod peer;
pub mod radsec;

pub use certradius_pki as pki;
