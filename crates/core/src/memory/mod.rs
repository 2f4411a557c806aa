//! In-memory adapters of every port and fakes of the outside world, so the use cases get unit
//! tests that run in milliseconds, without moto. Compiled for tests and with the `test-util`
//! feature only: never part of a Lambda binary.
//!
//! [`MemoryStore`] keeps one [`State`] behind a mutex and implements the storage ports
//! (`Directory`, `DirectoryAdmin`, `AuditSearch`, `FactorStore`, `ApprovalStore`,
//! `RequestCounter`) and the [`Ledger`](crate::ledger::Ledger), whose commits apply all of their
//! changes or none, under the conditions the DynamoDB adapter writes them under. It can be told
//! to fail its commits or its reads, to let another writer in before a commit, and to yield
//! before every call so that two use cases joined together interleave. [`MemoryWorld`] holds the
//! store with the fakes (clock, entropy, KMS, STS, console sign-in, session signer, pacer),
//! wires the use cases over them, and seeds the directory.

mod fakes;
mod ledger;
mod store;
mod world;

pub use fakes::{
    BrokerCall, ConsoleCall, FederationTokenSeen, KeyStep, MemoryBroker, MemoryBrokerKeys,
    MemoryConsole, MemoryIam, MemoryIamUser, MemorySigner, MemoryVault, RecordingPacer, SealedFor,
    SeededEntropy, TestClock,
};
pub use store::{Interloper, MemoryStore, State, StoredFactors, StoredGrant};
pub use world::{MemoryWorld, SESSION_LIFETIME, START, SeedError};
