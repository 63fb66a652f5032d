//! Making the image on this machine: the commit (git), the build context (.dockerignore) and the
//! Docker engine (build, tag, push).

pub(crate) mod context;
pub(crate) mod docker;
pub(crate) mod git;
