pub mod dispatch;
pub mod publisher;
pub mod pusher;
pub mod table;

pub use dispatch::{DispatchError, ShardDispatcher, ShardJob};
pub use publisher::{EventPublisher, PublishError};
pub use pusher::{ConnectionInfo, ConnectionPusher, PushError};
pub use table::{Condition, Index, Item, Page, Query, SkCond, Table, TableError, TxOp, Update};
