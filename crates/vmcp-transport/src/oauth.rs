//! Streamable HTTP with OAuth: rmcp's `AuthClient` puts the current access token on each
//! request and refreshes it by its refresh token. A client credentials grant has no refresh
//! token: this client obtains a new token before the current one expires, and once more when
//! the server refuses it, so that a connection outlives its tokens.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use http::{HeaderName, HeaderValue};
use oauth2::TokenResponse;
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::auth::{AuthClient, AuthError, AuthorizationManager, ClientCredentialsConfig};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::{Error as SseError, Sse};
use tokio::sync::Mutex;

/// How a streamable HTTP link authenticates with OAuth.
pub struct OAuthLink {
    /// Holds the tokens (and refreshes them, for a grant with a refresh token).
    pub manager: AuthorizationManager,
    /// For a client credentials grant, its settings: its token is obtained again before it
    /// expires. The manager holds the first one already.
    pub renew: Option<ClientCredentialsConfig>,
}

type Inner = AuthClient<reqwest::Client>;
type HttpError = StreamableHttpError<<Inner as StreamableHttpClient>::Error>;

/// The HTTP client of an OAuth link.
#[derive(Clone)]
pub(crate) struct OAuthHttpClient {
    inner: Inner,
    renewal: Option<Arc<Renewal>>,
}

struct Renewal {
    config: ClientCredentialsConfig,
    state: Mutex<RenewalState>,
}

#[derive(Default)]
struct RenewalState {
    /// When to obtain the next token (None until the first request reads the first one's).
    due: Option<Instant>,
    /// Counts the tokens obtained here: a refusal renews the token only if it is still the one
    /// that was refused (concurrent refusals renew it once).
    generation: u64,
}

/// Renewed at the latest this long before expiry (and at half the lifetime of short tokens),
/// ahead of rmcp's own check, which would find no refresh token.
const RENEW_AHEAD: Duration = Duration::from_secs(60);

fn due_after(lifetime: Option<Duration>, obtained: Instant) -> Option<Instant> {
    lifetime.map(|l| obtained + l - RENEW_AHEAD.min(l / 2))
}

impl OAuthHttpClient {
    pub(crate) fn new(http: reqwest::Client, link: OAuthLink) -> Self {
        Self {
            inner: AuthClient::new(http, link.manager),
            renewal: link.renew.map(|config| {
                Arc::new(Renewal {
                    config,
                    state: Mutex::default(),
                })
            }),
        }
    }

    /// Obtains a new client credentials token when the current one is due, or when `refused`
    /// names the generation of a token the server refused. Answers the generation in use.
    async fn renew(&self, refused: Option<u64>) -> Result<u64, AuthError> {
        let Some(renewal) = &self.renewal else {
            return Ok(0);
        };
        let mut state = renewal.state.lock().await;
        let now = Instant::now();
        if state.due.is_none() && refused.is_none() {
            // The first token was obtained just before this connection.
            let (_, token) = self
                .inner
                .auth_manager
                .lock()
                .await
                .get_credentials()
                .await?;
            state.due = due_after(token.and_then(|t| t.expires_in()), now).or(Some(far(now)));
        }
        let due = state.due.is_some_and(|d| now >= d);
        if !due && refused != Some(state.generation) {
            return Ok(state.generation);
        }
        let token = self
            .inner
            .auth_manager
            .lock()
            .await
            .exchange_client_credentials(&renewal.config)
            .await?;
        let obtained = Instant::now();
        state.due = due_after(token.expires_in(), obtained).or(Some(far(obtained)));
        state.generation += 1;
        Ok(state.generation)
    }

    /// Runs `call` with a current token; a client credentials token the server refuses is
    /// renewed, and the call made again, once.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, HttpError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, HttpError>>,
    {
        let generation = self.renew(None).await?;
        match call().await {
            Err(StreamableHttpError::AuthRequired(challenge)) if self.renewal.is_some() => {
                self.renew(Some(generation)).await?;
                match call().await {
                    Err(StreamableHttpError::AuthRequired(_)) => {
                        Err(StreamableHttpError::AuthRequired(challenge))
                    }
                    other => other,
                }
            }
            other => other,
        }
    }
}

/// A time that does not come (a token without a stated lifetime is renewed when refused).
fn far(now: Instant) -> Instant {
    now + Duration::from_secs(100 * 365 * 24 * 3600)
}

impl StreamableHttpClient for OAuthHttpClient {
    type Error = <Inner as StreamableHttpClient>::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.call(|| {
            self.inner.post_message(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                auth_header.clone(),
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.call(|| {
            self.inner.post_message_with_max_sse_event_size(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                auth_header.clone(),
                custom_headers.clone(),
                max_sse_event_size,
            )
        })
        .await
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> Result<StreamableHttpPostResponse, HttpError> {
        self.call(|| {
            self.inner.post_message_with_response_limits(
                uri.clone(),
                message.clone(),
                session_id.clone(),
                auth_header.clone(),
                custom_headers.clone(),
                limits,
            )
        })
        .await
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), HttpError> {
        self.call(|| {
            self.inner.delete_session(
                uri.clone(),
                session_id.clone(),
                auth_header.clone(),
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        self.call(|| {
            self.inner.get_stream(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                auth_header.clone(),
                custom_headers.clone(),
            )
        })
        .await
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<BoxStream<'static, Result<Sse, SseError>>, HttpError> {
        self.call(|| {
            self.inner.get_stream_with_max_sse_event_size(
                uri.clone(),
                session_id.clone(),
                last_event_id.clone(),
                auth_header.clone(),
                custom_headers.clone(),
                max_sse_event_size,
            )
        })
        .await
    }
}
