//! The HTTP requests the client sends a master, built without I/O: the URL
//! and method, the media type of the body and of the answer, HTTP basic
//! credentials, and `Mesos-Stream-Id` on every scheduler call but
//! SUBSCRIBE (a master refuses it there and requires it everywhere else).
//! SUBSCRIBE and the calls share one builder, so they cannot disagree on
//! any of it.

use agora_proto::{
    mesos::v1::{master, scheduler::Call},
    wire::Encoding,
};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, header};
use http_body_util::Full;
use prost::{Message, Name};

/// The path of the scheduler API on a master.
pub const SCHEDULER_PATH: &str = "/api/v1/scheduler";
/// The path of the operator API on a master.
pub const OPERATOR_PATH: &str = "/api/v1";
/// The header naming the subscription a scheduler call belongs to.
pub const STREAM_ID: HeaderName = HeaderName::from_static("mesos-stream-id");

/// A request as the client's HTTP connections send it.
pub type MesosRequest = Request<Full<Bytes>>;

/// A request that cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The master's base URL (configured, or from a redirect) does not make
    /// a valid request URL.
    #[error("{url} is not a valid request URL")]
    InvalidUrl {
        /// The URL as it was built.
        url: String,
        /// What is wrong with it.
        #[source]
        source: http::Error,
    },
}

/// Builds the requests to the masters, in one encoding and with one set of
/// credentials. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Requests {
    encoding: Encoding,
    /// `Basic ...`, marked sensitive so that it is never logged.
    authorization: Option<HeaderValue>,
}

impl Requests {
    /// Requests in `encoding`, with HTTP basic `credentials` (principal,
    /// secret) when the masters authenticate frameworks.
    pub fn new(encoding: Encoding, credentials: Option<&(String, String)>) -> Requests {
        Requests {
            encoding,
            authorization: credentials.map(basic_auth),
        }
    }

    /// SUBSCRIBE to the master at `master` (a base URL): no stream id yet.
    pub fn subscribe(&self, master: &str, call: &Call) -> Result<MesosRequest, RequestError> {
        self.post(&format!("{master}{SCHEDULER_PATH}"), call, None)
    }

    /// Any other scheduler call, on the subscription `stream_id` names.
    pub fn scheduler(
        &self,
        master: &str,
        stream_id: &HeaderValue,
        call: &Call,
    ) -> Result<MesosRequest, RequestError> {
        self.post(&format!("{master}{SCHEDULER_PATH}"), call, Some(stream_id))
    }

    /// A call of the operator API: not tied to a subscription.
    pub fn operator(
        &self,
        master: &str,
        call: &master::Call,
    ) -> Result<MesosRequest, RequestError> {
        self.post(&format!("{master}{OPERATOR_PATH}"), call, None)
    }

    fn post<M: Message + Name>(
        &self,
        url: &str,
        call: &M,
        stream_id: Option<&HeaderValue>,
    ) -> Result<MesosRequest, RequestError> {
        let content_type = self.encoding.content_type();
        let mut builder = Request::post(url)
            .header(header::CONTENT_TYPE, content_type)
            .header(header::ACCEPT, content_type);
        if let Some(stream_id) = stream_id {
            builder = builder.header(STREAM_ID, stream_id);
        }
        if let Some(authorization) = &self.authorization {
            builder = builder.header(header::AUTHORIZATION, authorization);
        }
        builder
            .body(Full::new(Bytes::from(self.encoding.encode(call))))
            .map_err(|source| RequestError::InvalidUrl {
                url: url.to_owned(),
                source,
            })
    }
}

fn basic_auth((principal, secret): &(String, String)) -> HeaderValue {
    use base64::Engine as _;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{principal}:{secret}"));
    let mut value =
        HeaderValue::from_str(&format!("Basic {token}")).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

#[cfg(test)]
mod tests {
    use agora_proto::mesos::v1::scheduler::call;

    use super::*;

    fn revive() -> Call {
        Call {
            r#type: Some(call::Type::Revive as i32),
            ..Default::default()
        }
    }

    fn header(request: &MesosRequest, name: impl http::header::AsHeaderName) -> &str {
        request.headers().get(name).unwrap().to_str().unwrap()
    }

    #[test]
    fn basic_auth_is_marked_sensitive() {
        let value = basic_auth(&("agora".into(), "secret".into()));
        assert!(value.is_sensitive());
        assert_eq!(value.to_str().unwrap(), "Basic YWdvcmE6c2VjcmV0");
    }

    #[test]
    fn subscribe_and_calls_differ_only_in_the_stream_id() {
        let credentials = ("agora".to_owned(), "secret".to_owned());
        let requests = Requests::new(Encoding::Json, Some(&credentials));
        let stream_id = HeaderValue::from_static("s-1");
        let subscribe = requests.subscribe("http://m1:5050", &revive()).unwrap();
        let call = requests
            .scheduler("http://m1:5050", &stream_id, &revive())
            .unwrap();
        for request in [&subscribe, &call] {
            assert_eq!(request.method(), http::Method::POST);
            assert_eq!(request.uri(), "http://m1:5050/api/v1/scheduler");
            assert_eq!(header(request, header::CONTENT_TYPE), "application/json");
            assert_eq!(header(request, header::ACCEPT), "application/json");
            assert!(request.headers()[header::AUTHORIZATION].is_sensitive());
        }
        assert!(!subscribe.headers().contains_key(STREAM_ID));
        assert_eq!(header(&call, STREAM_ID), "s-1");
    }

    #[test]
    fn operator_calls_go_to_the_operator_api_without_credentials_when_none() {
        let requests = Requests::new(Encoding::Protobuf, None);
        let request = requests
            .operator("http://m1:5050", &master::Call::default())
            .unwrap();
        assert_eq!(request.uri(), "http://m1:5050/api/v1");
        assert_eq!(
            header(&request, header::CONTENT_TYPE),
            "application/x-protobuf"
        );
        assert!(!request.headers().contains_key(header::AUTHORIZATION));
        assert!(!request.headers().contains_key(STREAM_ID));
    }

    #[test]
    fn a_master_url_that_makes_no_request_is_an_error() {
        let requests = Requests::new(Encoding::Protobuf, None);
        assert!(matches!(
            requests.subscribe("not a url", &revive()),
            Err(RequestError::InvalidUrl { .. })
        ));
    }
}
