//! Bearer-token check on every RPC when a token is configured.

use tonic::{Request, Status};

#[derive(Clone, Debug)]
pub struct Auth {
    expected: Option<String>,
}

impl Auth {
    pub fn new(token: Option<&str>) -> Self {
        Auth {
            expected: token
                .filter(|t| !t.is_empty())
                .map(|t| format!("Bearer {t}")),
        }
    }

    #[allow(clippy::result_large_err)] // the signature tonic's interceptors require
    pub fn check(&self, req: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.expected else {
            return Ok(req);
        };
        match req.metadata().get("authorization").map(|v| v.as_bytes()) {
            Some(got) if constant_time_eq(got, expected.as_bytes()) => Ok(req),
            Some(_) => Err(Status::unauthenticated("the token is wrong")),
            None => Err(Status::unauthenticated(
                "this gateway needs a token: send `authorization: Bearer TOKEN` (junction --token)",
            )),
        }
    }
}

/// Compares without leaking through timing where the first difference is.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
