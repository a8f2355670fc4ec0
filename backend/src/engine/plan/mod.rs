//! What goes where: `folders` lists both sides' folders (LIST, NAMESPACE, LSUB) and makes
//! the folder plan (admin rules, SPECIAL-USE, well-known names, the same name);
//! `namespaces` tells the user's own folders from other users' and shared ones.

pub mod folders;
pub mod namespaces;
