//! What goes where: `folders` lists both sides' folders (LIST, NAMESPACE, LSUB) and makes
//! the folder plan (admin rules, SPECIAL-USE, well-known names, the same name).

pub mod folders;
