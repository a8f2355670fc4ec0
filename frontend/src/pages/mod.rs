pub mod admin;
pub mod helpdesk;
pub mod job_detail;
pub mod migration;
pub mod not_found;
pub mod setup;
pub mod sign_in;
pub mod staff_sign_in;
