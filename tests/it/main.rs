//! Integration tests: a real gateway on 127.0.0.1, driven through real gRPC, with test
//! networks that live here only.

mod api;
mod bridge;
mod disk_full;
mod endpoints;
mod failed;
mod harness;
mod http;
mod http_clients;
mod http_tls;
mod lab;
mod limits;
mod local_copy;
mod metrics;
mod multi_file;
mod names;
mod networks;
mod on_demand;
mod search;
mod swarm;
mod testnet;
mod torznab_probe;
mod transfers;
