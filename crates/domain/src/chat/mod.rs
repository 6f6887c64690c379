//! The chat domain: settings, participants, messages, turns, typing, completion, the
//! assistant and the extensions (analytics, moderation).
//!
//! Everything of one chat lives in the partition `CHAT#{id}` (see `crate::keys`): the
//! session items (`S#…`: meta, members, turn, typing, completion) sort after the messages
//! (`MSG#{time}#{id}`), so one Query reads the whole session ([`session`]).
//!
//! | module | what |
//! |---|---|
//! | [`session`] | the one-Query read of a session, and the state view |
//! | [`turns`] | the turn modes, as pure functions |
//! | [`messages`] | the message pipeline (validate, moderate, store, announce) and history |
//! | [`typing`] | typing indicators with a TTL |
//! | [`completion`] | per-participant completion, `ready` exactly once |
//! | [`settings`] | runtime settings: turn mode, assistant, extensions, blocklist |
//! | [`assistant`] | the assistant's providers and its answer to `chat.ai.requested` |
//! | [`extensions`], [`moderation`], [`analytics`] | the extensions |

pub mod analytics;
pub mod assistant;
pub mod completion;
pub mod error;
pub mod extensions;
pub mod messages;
pub mod model;
pub mod moderation;
pub mod payloads;
pub mod room;
pub mod session;
pub mod settings;
pub mod turns;
pub mod typing;

pub use error::ChatError;
pub use messages::{history, send, History};
pub use model::*;
pub use payloads::*;
pub use room::*;
pub use typing::TypingFrame;
