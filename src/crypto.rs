//! The primitives certradius uses outside rustls: TLS ticket sealing (AES-256-GCM), OCSP response
//! signatures (RFC 6960 §3.2), OCSP CertID hashes (RFC 6960 §4.1.1) and SHA-256 fingerprints.
//! They come from the same library as the rustls crypto provider, so a `fips` build has a single
//! crypto module: aws-lc-rs by default (its API is *ring*'s), *ring* with `--features ring` alone.

#[cfg(feature = "aws-lc-rs")]
pub(crate) use aws_lc_rs::{aead, digest, rand, signature};
#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
pub(crate) use ring::{aead, digest, rand, signature};
