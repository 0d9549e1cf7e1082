//! The `TunnelRoute` custom resource. Field docs become `kubectl explain` text.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A rule of the tunnel server's connect policy: which clients of this namespace may reach which
/// destinations through the tunnel, and whether they are allowed, denied or redirected.
/// Connections no route matches are denied.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "warren.dev",
    version = "v1alpha1",
    kind = "TunnelRoute",
    namespaced,
    status = "TunnelRouteStatus",
    shortname = "troute",
    category = "warren",
    printcolumn = r#"{"name":"Action","type":"string","jsonPath":".spec.action"}"#,
    printcolumn = r#"{"name":"Priority","type":"integer","jsonPath":".spec.priority"}"#,
    printcolumn = r#"{"name":"Destinations","type":"string","jsonPath":".spec.destinations[*]['cidr','host']"}"#,
    printcolumn = r#"{"name":"Accepted","type":"string","jsonPath":".status.conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[x_kube(validation = Rule::new("self.action == 'Redirect' ? has(self.redirect) : !has(self.redirect)").message("redirect is required when action is Redirect, and only then"))]
#[serde(rename_all = "camelCase")]
pub struct TunnelRouteSpec {
    /// Precedence among routes matching the same connection: higher wins. Between equal
    /// priorities the more specific destination wins, then the narrower port range, then Deny.
    #[serde(default)]
    pub priority: i32,

    /// Which clients of this namespace the route applies to. Omitted: every service account of
    /// the namespace. A client is identified by its certificate's URI SAN
    /// `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<ClientsSpec>,

    /// The destinations the route matches; a connection matches if it matches any of them.
    #[x_kube(validation = Rule::new("size(self) > 0").message("at least one destination is required"))]
    #[schemars(length(max = 256))]
    pub destinations: Vec<DestinationSpec>,

    /// What to do with matching connections: Allow, Deny, or Redirect (to `redirect`).
    pub action: RouteAction,

    /// Where Redirect sends matching connections. Required when action is Redirect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect: Option<RedirectSpec>,
}

/// The clients a route applies to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientsSpec {
    /// Names of service accounts in the route's namespace.
    #[schemars(length(min = 1, max = 256))]
    pub service_accounts: Vec<String>,
}

/// One destination: exactly one of `cidr` or `host`, and optionally ports.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.cidr) != has(self.host)").message("give exactly one of cidr or host"))]
#[x_kube(validation = Rule::new("!has(self.cidr) || isCIDR(self.cidr)").message("cidr must be an IPv4 or IPv6 CIDR, e.g. 10.0.0.0/8 or fd00::/8"))]
#[serde(rename_all = "camelCase")]
pub struct DestinationSpec {
    /// IP destinations inside this network, e.g. `10.0.0.0/8`, `192.0.2.7/32`, `fd00::/8`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub cidr: Option<String>,

    /// Destinations requested by DNS name: an exact name (`api.example.com`), or `*.suffix` for
    /// every name under the suffix (`*.example.com` matches `a.example.com` and
    /// `a.b.example.com`, not `example.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub host: Option<String>,

    /// Ports (`"443"`) or inclusive ranges (`"8000-8080"`). Omitted: all ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub ports: Vec<PortSpec>,
}

/// A port or an inclusive port range as a string: `"443"` or `"8000-8080"`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(transparent)]
pub struct PortSpec(#[schemars(regex(pattern = r"^[0-9]{1,5}(-[0-9]{1,5})?$"))] pub String);

/// What a route does.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum RouteAction {
    /// Connect to the requested destination.
    Allow,
    /// Refuse the connection; the client is told which route denied it.
    Deny,
    /// Connect to `redirect` instead of the requested destination.
    Redirect,
}

/// The target of a Redirect.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedirectSpec {
    /// IP address or DNS name to connect to.
    #[schemars(length(min = 1, max = 253))]
    pub host: String,

    /// Port to connect to. Omitted: the port the client asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<u16>,
}

/// What the controller found.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TunnelRouteStatus {
    /// The `metadata.generation` the conditions describe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// `Accepted` (the route is valid and in force) and `Conflicted` (another route of equal
    /// priority denies what this one allows, or the reverse).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
