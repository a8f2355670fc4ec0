//! Copying messages: `folder` (one folder: settle what a previous run left pending,
//! re-match, flag changes, then batches), `listing` (a folder's UIDs, flags, dates and
//! sizes; split responses merged, incomplete ones asked again or reported), `fetch`
//! (exact bytes from the source: body forms and their fallbacks), `append`
//! (APPEND/MULTIAPPEND, APPENDUID, finding messages stored without it), `recognise` (finding
//! a message the target stored changed, by evidence that survives a rewrite), `verify` (what
//! the target holds after APPEND: flags given again, alterations reported), `rematch`
//! (copied messages found again after the source folder got a new UIDVALIDITY), `flags`,
//! `budget` (the node's bytes in flight: reserved before a fetch, given back after APPEND),
//! `changes` (re-runs that skip unchanged folders or list only what changed: CONDSTORE).

pub mod append;
pub mod budget;
pub mod changes;
pub mod fetch;
pub mod flags;
pub mod folder;
pub mod listing;
pub mod recognise;
pub mod rematch;
pub mod verify;
