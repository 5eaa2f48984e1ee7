//! Traces through OpenTelemetry, exported over OTLP/HTTP.
//!
//! Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-only
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and off again with
//! `OTEL_SDK_DISABLED=true`. The exporter reads the standard variables
//! itself: the endpoint, `OTEL_EXPORTER_OTLP_HEADERS`, the timeout,
//! `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`, and the batch
//! processor's `OTEL_BSP_*`. The protocol is `http/protobuf` unless
//! `OTEL_EXPORTER_OTLP_PROTOCOL` says `http/json`.
//!
//! Each request is a span (`request`, continuing an incoming W3C
//! `traceparent`), with a child for each store call and for each password
//! hash. Span fields carry no header but `traceparent`, and no body.

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The export is configured: an endpoint is set and the SDK not disabled.
pub fn wanted(var: impl Fn(&str) -> Option<String>) -> bool {
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let endpoint = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|name| var(name).is_some_and(|v| !v.trim().is_empty()));
    endpoint && !disabled
}

/// The OTLP protocol asked for; only the HTTP ones are built in.
pub fn protocol(var: impl Fn(&str) -> Option<String>) -> Result<Protocol, String> {
    for name in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        let Some(value) = var(name) else { continue };
        return match value.trim().to_ascii_lowercase().as_str() {
            "http/protobuf" => Ok(Protocol::HttpBinary),
            "http/json" => Ok(Protocol::HttpJson),
            _ => Err(format!(
                "{name}={value} is not supported: use http/protobuf (the default) or http/json"
            )),
        };
    }
    Ok(Protocol::HttpBinary)
}

/// The tracer provider, exporting in batches on threads of its own. Also
/// installs the W3C trace-context propagator that reads `traceparent`.
pub fn provider(protocol: Protocol) -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(protocol)
        .build()
        .map_err(|e| format!("the OTLP exporter could not be built: {e}"))?;
    // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, win.
    let mut resource = Resource::builder().with_service_name("sessiond");
    if let Ok(name) = std::env::var("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name(name);
    }
    let resource = resource
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// The layer that turns this crate's spans into OpenTelemetry spans.
pub fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::SdkTracer {
    provider.tracer("sessiond")
}

/// Makes `span` continue the trace named by the request's `traceparent`
/// (and `tracestate`), if it carries a valid one.
pub fn continue_trace(span: &tracing::Span, headers: &actix_web::http::header::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // Without a valid incoming context the span starts a trace of its own.
    let _ = span.set_parent(parent);
}

/// Names the exported span once the route is known (`POST /api/v1/login`),
/// as OpenTelemetry's HTTP conventions have it. Nothing when not exporting.
pub fn rename(span: &tracing::Span, name: impl FnOnce() -> String) {
    use opentelemetry::trace::TraceContextExt as _;
    let context = span.context();
    let exported = context.span();
    if exported.span_context().is_valid() {
        exported.update_name(name());
    }
}

/// The exported span's trace and span ids, in the hex of `traceparent`,
/// for the access log; `None` when not exporting.
pub fn ids(span: &tracing::Span) -> Option<(String, String)> {
    use opentelemetry::trace::TraceContextExt as _;
    let context = span.context();
    let exported = context.span();
    let ids = exported.span_context();
    ids.is_valid()
        .then(|| (ids.trace_id().to_string(), ids.span_id().to_string()))
}

struct HeaderExtractor<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn export_needs_an_endpoint_and_no_disable() {
        assert!(!wanted(env(&[])));
        assert!(wanted(env(&[(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "http://c:4318"
        )])));
        assert!(wanted(env(&[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http://c:4318/v1/traces"
        )])));
        assert!(!wanted(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_SDK_DISABLED", "true"),
        ])));
    }

    #[test]
    fn the_protocol_is_protobuf_unless_json_is_asked_and_grpc_is_refused() {
        assert_eq!(protocol(env(&[])), Ok(Protocol::HttpBinary));
        assert_eq!(
            protocol(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])),
            Ok(Protocol::HttpJson)
        );
        let refused = protocol(env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")])).unwrap_err();
        assert!(
            refused.contains("OTEL_EXPORTER_OTLP_PROTOCOL=grpc"),
            "{refused}"
        );
    }
}
