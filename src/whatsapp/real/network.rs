//! The network seam: how clients reach WhatsApp ([`Network`]: the real one, one dialling an
//! address the caller picks, or none), and the adapters that hand the shared transport and
//! HTTP client to each client's builder. The transport adapter also reports a connection that
//! cannot even be opened, which the crate itself does not.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::mpsc;
use whatsapp_rust::HttpResourceReport;
use whatsapp_rust::async_trait;
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient};
use whatsapp_rust::transport::{
    TokioWebSocketTransportFactory, Transport, TransportEvent, TransportFactory,
};
use whatsapp_rust::wacore::net::{StreamingHttpResponse, UploadBody};

use super::{inject, log_session_event};
use crate::ids::TenantId;
use crate::whatsapp::{Inbound, InboundEvent, SessionEvent};

/// How clients reach WhatsApp. [`Network::real`] is the WebSocket transport and the ureq
/// HTTP client; tests pass stand-ins that refuse to connect.
#[derive(Clone)]
pub struct Network {
    pub transport: Arc<dyn TransportFactory>,
    pub http: Arc<dyn HttpClient>,
}

impl Network {
    pub fn real() -> Self {
        Self {
            transport: Arc::new(TokioWebSocketTransportFactory::new()),
            http: Arc::new(UreqHttpClient::new()),
        }
    }

    /// The real WebSocket transport, dialling `url` instead of WhatsApp, and no HTTP: the
    /// whole real connection path against an address the caller controls (tests point it
    /// at a local port nothing listens on, so they behave alike with or without internet).
    pub fn real_transport_to(url: &str) -> Self {
        Self {
            transport: Arc::new(TokioWebSocketTransportFactory::new().with_url(url)),
            http: Arc::new(Offline),
        }
    }

    /// A network that refuses every connection at once, without sending a packet: the real
    /// adapter with no way out (tests of the whole application, and demos on a machine
    /// without internet).
    pub fn offline() -> Self {
        Self {
            transport: Arc::new(Offline),
            http: Arc::new(Offline),
        }
    }
}

struct Offline;

#[async_trait]
impl TransportFactory for Offline {
    async fn create_transport(
        &self,
    ) -> anyhow::Result<(
        Arc<dyn Transport>,
        whatsapp_rust::async_channel::Receiver<TransportEvent>,
    )> {
        anyhow::bail!("offline: no network")
    }
}

#[async_trait]
impl HttpClient for Offline {
    async fn execute(&self, _request: HttpRequest) -> anyhow::Result<HttpResponse> {
        anyhow::bail!("offline: no network")
    }
}

/// [`TransportFactory`] for a shared factory (the builder takes one by value).
///
/// A connection that cannot even be opened (no network, DNS failure, refused) produces no
/// whatsapp-rust event, so it is reported here: the session shows the failure while the
/// crate backs off and tries again.
pub(super) struct SharedTransport {
    pub(super) factory: Arc<dyn TransportFactory>,
    pub(super) tenant: TenantId,
    pub(super) inbound: mpsc::Sender<Inbound>,
    pub(super) ended: Arc<AtomicBool>,
}

#[async_trait]
impl TransportFactory for SharedTransport {
    async fn create_transport(
        &self,
    ) -> anyhow::Result<(
        Arc<dyn Transport>,
        whatsapp_rust::async_channel::Receiver<TransportEvent>,
    )> {
        let created = self.factory.create_transport().await;
        if let Err(err) = &created
            && !self.ended.load(Ordering::SeqCst)
        {
            let event = SessionEvent::Disconnected {
                reason: Some(format!("cannot reach WhatsApp ({err:#}); retrying")),
                retrying: true,
            };
            log_session_event(self.tenant, &event);
            inject(&self.inbound, self.tenant, InboundEvent::Session(event)).await;
        }
        created
    }
}

/// [`HttpClient`] for a shared client (the builder takes one by value).
pub(super) struct SharedHttp(pub(super) Arc<dyn HttpClient>);

#[async_trait]
impl HttpClient for SharedHttp {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        self.0.execute(request).await
    }

    fn supports_streaming(&self) -> bool {
        self.0.supports_streaming()
    }

    fn execute_streaming(&self, request: HttpRequest) -> anyhow::Result<StreamingHttpResponse> {
        self.0.execute_streaming(request)
    }

    fn supports_upload_streaming(&self) -> bool {
        self.0.supports_upload_streaming()
    }

    fn execute_upload(
        &self,
        request: HttpRequest,
        body: UploadBody,
        content_length: u64,
    ) -> anyhow::Result<HttpResponse> {
        self.0.execute_upload(request, body, content_length)
    }

    fn resource_report(&self) -> Option<HttpResourceReport> {
        self.0.resource_report()
    }
}
