//! Mailferry's backend: configuration, database, the web server and (in `engine`)
//! the IMAP copy engine. The engine knows nothing of HTTP; `http` knows nothing of IMAP.

pub mod account_check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod csv_cells;
pub mod db;
pub mod engine;
pub mod http;
pub mod import;
pub mod jobs;
pub mod metrics;
pub mod migrate_cmd;
pub mod oauth;
pub mod profiles;
pub mod staff;
pub mod staff_cmd;
pub mod startup;
pub mod telemetry;
pub mod user_names;
pub mod vault;
