//! Route files: the multi-document YAML of TunnelRoute manifests `warren server --policy` reads,
//! the very objects `kubectl apply` takes.

use serde::Deserialize;

use super::TunnelRoute;

/// Why a route file is unusable. Messages name the document and the route.
#[derive(Debug, thiserror::Error)]
pub enum RoutesFileError {
    /// A document is not valid YAML or not a valid TunnelRoute.
    #[error("document {document}: {source}")]
    Yaml {
        /// 1-based document number.
        document: usize,
        /// The parse error (with line and column).
        source: serde_yaml::Error,
    },
    /// A document is another kind or API version.
    #[error(
        "document {document}: expected apiVersion warren.dev/v1alpha1, kind TunnelRoute; found {api_version} {kind}"
    )]
    WrongKind {
        /// 1-based document number.
        document: usize,
        /// The document's apiVersion.
        api_version: String,
        /// The document's kind.
        kind: String,
    },
    /// A document has no metadata.name.
    #[error("document {document}: TunnelRoute without metadata.name")]
    Unnamed {
        /// 1-based document number.
        document: usize,
    },
    /// Two routes have the same namespace and name.
    #[error("document {document}: duplicate TunnelRoute {namespace}/{name}")]
    Duplicate {
        /// 1-based document number.
        document: usize,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
}

/// Parses TunnelRoute manifests separated by `---`; empty documents are skipped and a route
/// without a namespace is in `default`, as with `kubectl apply`.
pub fn parse_routes_yaml(text: &str) -> Result<Vec<TunnelRoute>, RoutesFileError> {
    let mut routes: Vec<TunnelRoute> = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let document_number = i + 1;
        let yaml_error = |source| RoutesFileError::Yaml {
            document: document_number,
            source,
        };
        let value = serde_yaml::Value::deserialize(document).map_err(yaml_error)?;
        if value.is_null() {
            continue;
        }
        let meta: TypeMeta = serde_yaml::from_value(value.clone()).map_err(yaml_error)?;
        if meta.api_version != "warren.dev/v1alpha1" || meta.kind != "TunnelRoute" {
            return Err(RoutesFileError::WrongKind {
                document: document_number,
                api_version: meta.api_version,
                kind: meta.kind,
            });
        }
        let mut route: TunnelRoute = serde_yaml::from_value(value).map_err(yaml_error)?;
        let Some(name) = route.metadata.name.clone() else {
            return Err(RoutesFileError::Unnamed {
                document: document_number,
            });
        };
        let namespace = route
            .metadata
            .namespace
            .get_or_insert_with(|| "default".to_owned())
            .clone();
        let duplicate = routes.iter().any(|r| {
            r.metadata.name.as_deref() == Some(&name)
                && r.metadata.namespace.as_deref() == Some(&namespace)
        });
        if duplicate {
            return Err(RoutesFileError::Duplicate {
                document: document_number,
                namespace,
                name,
            });
        }
        routes.push(route);
    }
    Ok(routes)
}
