//! The request target kept to the text rule (`domain::text`) before any
//! handler reads it: a control character in the path or in a query
//! parameter, once decoded (`%00`), is a 400, `invalidFilter` in `filter`
//! and `invalidValue` elsewhere, rather than a value that reaches a query
//! (PostgreSQL refuses NUL in text; SQLite would compare it).

use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use super::error::ScimError;
use crate::domain::text::{self, InTarget};

/// Middleware on the `/scim/v2` scope.
pub async fn refuse_control_characters(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody + 'static>>, actix_web::Error> {
    let Some((at, found)) = text::find_control_in_target(req.path(), req.query_string()) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let detail = format!("{at} {found}");
    let err = match &at {
        InTarget::Parameter(name) if name.eq_ignore_ascii_case("filter") => {
            ScimError::invalid_filter(detail)
        }
        _ => ScimError::invalid_value(detail),
    };
    Ok(req
        .into_response(err.error_response())
        .map_into_right_body())
}
