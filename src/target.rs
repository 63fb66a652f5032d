//! What a command acts on and what it changes: the service (`Target`), the images and environment
//! variables to put into its containers, and the one-off task to run first.

use crate::image_ref::ImageRef;

/// The service a command acts on.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) cluster: String,
    pub(crate) service: String,
}

/// An image to put into one container (or into the only one, when `container` is None).
#[derive(Debug, Clone)]
pub(crate) struct ImageChange {
    pub(crate) container: Option<String>,
    pub(crate) image: ImageRef,
}

/// An environment variable to set in one container.
#[derive(Debug, Clone)]
pub(crate) struct EnvChange {
    pub(crate) container: Option<String>,
    pub(crate) key: String,
    pub(crate) value: String,
}

/// `--run-task`: run the new task definition once before the service moves to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunTask {
    /// Only this container (the others are left out of the run's overrides); None: the whole task.
    pub(crate) container: Option<String>,
    pub(crate) command: Option<Vec<String>>,
}
