//! A deadline on reading a request's body (`--body-timeout`), as actix's
//! `client_request_timeout` is one on its head: a client that declared a
//! body and trickles it, or stops, is answered 408 and its connection
//! closed once the deadline passes, whatever reads the body (SCIM's
//! `ScimBody`, the host API's `Body`, actix's `Bytes`). The answer is the
//! error body of the surface the request went to: RFC 7644 §3.12 under
//! `/scim/v2` (and any other path, which SCIM answers), RFC 9457 under
//! `/api/`.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{ConnectionType, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, ResponseError};
use futures_util::Stream;

use crate::api::problem::Problem;
use crate::scim::error::ScimError;

/// How long a request's body may take to arrive, from when its head was
/// read (app data; without it, no deadline).
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Duration);

/// Read the request's body under the deadline; when it passed, answer 408
/// in place of whatever the handler made of the cut body.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, Error> {
    let deadline = req.app_data::<BodyDeadline>().map(|d| d.0);
    let has_body = req.headers().contains_key(header::CONTENT_LENGTH)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    let Some(deadline) = deadline.filter(|_| has_body) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let expired = Rc::new(Cell::new(false));
    let body = Timed {
        body: req.take_payload(),
        deadline: Box::pin(tokio::time::sleep(deadline)),
        expired: expired.clone(),
    };
    req.set_payload(Payload::from(
        Box::pin(body) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
    ));
    let is_api = req.path().starts_with("/api/");
    let answered = next.call(req).await;
    if !expired.get() {
        return Ok(answered?.map_into_left_body());
    }
    let detail = format!(
        "the request body did not arrive within {}",
        humantime::format_duration(deadline)
    );
    let mut timeout = if is_api {
        Problem::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", detail).error_response()
    } else {
        ScimError::new(StatusCode::REQUEST_TIMEOUT, None, detail).error_response()
    };
    // The rest of the body may still be on its way: the connection cannot
    // carry another request (RFC 9110 §15.5.9: the server may close it).
    timeout
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    match answered {
        Ok(res) => Ok(res.into_response(timeout).map_into_right_body()),
        Err(err) => Err(actix_web::error::InternalError::from_response(err, timeout).into()),
    }
}

/// A body that ends in an error once the deadline passes.
struct Timed {
    body: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    expired: Rc<Cell<bool>>,
}

impl Stream for Timed {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.expired.get() {
            return Poll::Ready(None);
        }
        if let Poll::Ready(chunk) = Pin::new(&mut this.body).poll_next(cx) {
            return Poll::Ready(chunk);
        }
        match this.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.set(true);
                Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the request body did not arrive in time",
                )))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
