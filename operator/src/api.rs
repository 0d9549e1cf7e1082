//! The `warren.dev/v1alpha1` API: one definition of `TunnelRoute`, used by the CRD generator,
//! the controller, and the tunnel server's file and Kubernetes policy sources.

mod convert;
mod routes_file;
mod tunnel_route;

pub use convert::RouteError;
pub use routes_file::{RoutesFileError, parse_routes_yaml};
pub use tunnel_route::{
    ClientsSpec, DestinationSpec, PortSpec, RedirectSpec, RouteAction, TunnelRoute,
    TunnelRouteSpec, TunnelRouteStatus,
};
