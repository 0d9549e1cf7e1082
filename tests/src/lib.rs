//! Support code for Warren's black-box tests: certificates, processes, network namespaces.
#![forbid(unsafe_code)]
