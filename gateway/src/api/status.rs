//! The one place gateway errors become gRPC statuses.

use junction_core::NetworkError;
use tonic::{Code, Status};

use crate::GatewayError;

impl From<GatewayError> for Status {
    fn from(e: GatewayError) -> Status {
        let code = code(&e);
        if code == Code::Internal {
            tracing::error!(error = %e, "request failed");
        }
        Status::new(code, e.to_string())
    }
}

/// The gRPC code of an error; the HTTP fronts derive their status from it too.
pub(crate) fn code(e: &GatewayError) -> Code {
    match e {
        GatewayError::Query(_)
        | GatewayError::Link(_)
        | GatewayError::ContentId(_)
        | GatewayError::Invalid(_) => Code::InvalidArgument,
        GatewayError::NotFound(_) => Code::NotFound,
        GatewayError::Conflict(_) => Code::FailedPrecondition,
        GatewayError::Unavailable(_) => Code::Unavailable,
        GatewayError::Network { source, .. } => match source {
            NetworkError::Invalid(_) => Code::InvalidArgument,
            NetworkError::NotFound(_) => Code::NotFound,
            NetworkError::Unsupported(_) => Code::Unimplemented,
            NetworkError::Timeout(_) => Code::DeadlineExceeded,
            NetworkError::Unreachable(_) | NetworkError::Shutdown => Code::Unavailable,
            _ => Code::Internal,
        },
        GatewayError::Store(_) | GatewayError::Io(_) => Code::Internal,
    }
}
