//! Every gRPC call counted by service, method and status code, for `/metrics`: a tower layer
//! on the tonic server, outside the token check, so refused calls count too.
//!
//! The code is the `grpc-status` the call ended with: in the response headers when it
//! failed at once (a trailers-only answer), in the trailers otherwise, so a stream counts
//! when it ends. One that ends without a status (the client went away, or the connection
//! dropped) counts as `Cancelled`. Paths that name no method of a served service count as
//! `unknown`, so what a client sends cannot grow the label sets.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};

use hyper::body::{Frame, SizeHint};
use prost::Message;
use tonic::Code;
use tonic::codegen::http::{self, HeaderMap};
use tonic::codegen::{Body, Service};

use crate::http::metrics::counted;

/// Adds [`Count`] around the server's routes.
#[derive(Debug, Clone, Copy, Default)]
pub struct CountLayer;

impl<S> tower_layer::Layer<S> for CountLayer {
    type Service = Count<S>;

    fn layer(&self, inner: S) -> Count<S> {
        Count { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Count<S> {
    inner: S,
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for Count<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: Body,
{
    type Response = http::Response<Counted<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = method(req.uri().path());
        let answer = self.inner.call(req);
        Box::pin(async move {
            let mut call = Call {
                service,
                method,
                done: false,
            };
            let resp = match answer.await {
                Ok(r) => r,
                Err(e) => {
                    call.end(Code::Unknown);
                    return Err(e);
                }
            };
            if let Some(code) = grpc_status(resp.headers()) {
                call.end(code);
            }
            Ok(resp.map(|inner| Counted {
                inner: Box::pin(inner),
                call,
            }))
        })
    }
}

/// One call, counted once: when its status is seen, or when it ends without one.
#[derive(Debug)]
struct Call {
    service: &'static str,
    method: &'static str,
    done: bool,
}

impl Call {
    fn end(&mut self, code: Code) {
        if !self.done {
            self.done = true;
            counted::grpc_call(self.service, self.method, code_name(code));
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        self.end(Code::Cancelled);
    }
}

/// The response body, watched for the trailers that carry the status.
pub struct Counted<B> {
    inner: Pin<Box<B>>,
    call: Call,
}

impl<B: Body> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    self.call.end(code);
                }
            }
            Poll::Ready(Some(Err(_))) => self.call.end(Code::Unknown),
            // Ended with no status: not a gRPC answer, which tonic never sends.
            Poll::Ready(None) => self.call.end(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|v| Code::from_bytes(v.as_bytes()))
}

/// The `(service, method)` a path names, from the descriptors of the services the API
/// serves; `("unknown", "unknown")` for anything else.
fn method(path: &str) -> (&'static str, &'static str) {
    KNOWN
        .get(path)
        .map_or(("unknown", "unknown"), |(s, m)| (s.as_str(), m.as_str()))
}

/// `/package.Service/Method` → (`package.Service`, `Method`), for every method served.
static KNOWN: LazyLock<HashMap<String, (String, String)>> = LazyLock::new(|| {
    let sets: [&[u8]; 4] = [
        proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut known = HashMap::new();
    for set in sets {
        let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
            tracing::warn!("a served descriptor set does not decode; its calls count as unknown");
            continue;
        };
        for file in &set.file {
            for service in &file.service {
                let name = match file.package() {
                    "" => service.name().to_owned(),
                    p => format!("{p}.{}", service.name()),
                };
                for m in &service.method {
                    known.insert(
                        format!("/{name}/{}", m.name()),
                        (name.clone(), m.name().to_owned()),
                    );
                }
            }
        }
    }
    known
});

/// The code's name as gRPC spells it in other languages' metrics (`OK`, `NotFound`, …).
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Cancelled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_methods_are_known_and_nothing_else() {
        assert_eq!(
            method("/junction.v1.Gateway/Search"),
            ("junction.v1.Gateway", "Search")
        );
        assert_eq!(
            method("/grpc.health.v1.Health/Check"),
            ("grpc.health.v1.Health", "Check")
        );
        assert_eq!(
            method("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"),
            (
                "grpc.reflection.v1alpha.ServerReflection",
                "ServerReflectionInfo"
            )
        );
        assert_eq!(method("/junction.v1.Gateway/Nope"), ("unknown", "unknown"));
        assert_eq!(method("/x"), ("unknown", "unknown"));
    }

    #[test]
    fn codes_read_as_grpc_names_them() {
        assert_eq!(code_name(Code::from_bytes(b"0")), "OK");
        assert_eq!(code_name(Code::from_bytes(b"5")), "NotFound");
        assert_eq!(code_name(Code::from_bytes(b"16")), "Unauthenticated");
    }
}
