//! Prompt templates: the Mustache renderer behind the prompt library.
pub mod mustache;
pub mod render;
