//! Mailferry's backend: configuration, database, the web server and (in `engine`)
//! the IMAP copy engine. The engine knows nothing of HTTP; `http` knows nothing of IMAP.

pub mod cli;
pub mod config;
pub mod db;
pub mod http;
pub mod startup;
pub mod telemetry;
