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
    /// Whether the first token's lifetime was read (at the first request).
    started: bool,
    /// When to obtain the next token (None: not before the server refuses this one).
    due: Option<Instant>,
    /// When the current token expires (None: not said).
    expires: Option<Instant>,
    /// Counts the tokens obtained here: a refusal renews the token only if it is still the one
    /// that was refused (concurrent refusals renew it once).
    generation: u64,
}

impl RenewalState {
    /// Renewed a minute before expiry (half the lifetime for short tokens), and a little more:
    /// ahead of rmcp's own check (30 s, or half the lifetime, counted in whole seconds, so up to
    /// a second early), which would find no refresh token and send the request without one.
    fn obtained(&mut self, lifetime: Option<Duration>, at: Instant) {
        let ahead =
            |l: Duration| Duration::from_secs(60).min(l / 2) + Duration::from_secs(5).min(l / 3);
        // A lifetime too long to count from now (an authorization server's figure) is none.
        self.expires = lifetime.and_then(|l| at.checked_add(l));
        self.due = lifetime.and_then(|l| at.checked_add(l.saturating_sub(ahead(l))));
    }
}

/// After a renewal that failed while the token still holds, the next attempt waits this long.
const RETRY_RENEWAL: Duration = Duration::from_secs(5);

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
    /// names the generation of a token the server refused. Answers the generation in use. A
    /// renewal ahead of expiry that fails keeps the current token while it holds (the
    /// authorization server may be down for a moment): only a token that has expired, or was
    /// refused, makes the call fail with the renewal's error.
    async fn renew(&self, refused: Option<u64>) -> Result<u64, AuthError> {
        let Some(renewal) = &self.renewal else {
            return Ok(0);
        };
        let mut state = renewal.state.lock().await;
        let now = Instant::now();
        if !state.started {
            // The first token was obtained just before this connection.
            let (_, token) = self
                .inner
                .auth_manager
                .lock()
                .await
                .get_credentials()
                .await?;
            state.obtained(token.and_then(|t| t.expires_in()), now);
            state.started = true;
        }
        let due = state.due.is_some_and(|d| now >= d);
        let is_refused = refused == Some(state.generation);
        if !due && !is_refused {
            return Ok(state.generation);
        }
        let exchanged = self
            .inner
            .auth_manager
            .lock()
            .await
            .exchange_client_credentials(&renewal.config)
            .await;
        match exchanged {
            Ok(token) => {
                state.obtained(token.expires_in(), Instant::now());
                state.generation += 1;
                Ok(state.generation)
            }
            Err(error) if !is_refused && state.expires.is_none_or(|x| Instant::now() < x) => {
                tracing::warn!(%error, "renewing the client credentials token failed; the current one is used while it holds");
                let retry = Instant::now() + RETRY_RENEWAL;
                state.due = Some(state.expires.map_or(retry, |x| x.min(retry)));
                Ok(state.generation)
            }
            Err(error) => Err(error),
        }
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
