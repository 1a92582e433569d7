//! The admin token of `--admin-token-file`, made by several nodes at once on
//! one database: every node starts, and there is one token.

use slipway_server::{access, store::Store};
use slipway_testkit::{TestDatabase, write_admin_token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_bootstrapping_the_same_admin_token_at_once_all_start() {
    let database = TestDatabase::create().await;
    let dir = tempfile::TempDir::new().expect("dir");
    let token_file = write_admin_token(dir.path());
    // Each node has its own connection pool; the schema is made once first.
    let mut stores = Vec::new();
    for _ in 0..6 {
        stores.push(Store::connect(&database.url).await.expect("connect"));
    }
    let bootstraps = stores
        .iter()
        .map(|store| access::bootstrap(store, dir.path(), Some(&token_file)));
    for result in futures::future::join_all(bootstraps).await {
        result.expect("every node bootstraps");
    }
    let tokens = stores[0].tokens().await.expect("tokens");
    assert_eq!(tokens.len(), 1, "one admin token: {tokens:?}");
    assert_eq!(tokens[0].role, "admin");

    // A file whose token id is stored with another secret is refused.
    let stored = std::fs::read_to_string(&token_file).expect("token");
    let (id, _) = access::parse_token(&stored).expect("a token");
    let other = access::NewToken::generate().expect("token");
    let (_, other_secret) = other.token.rsplit_once('_').expect("a secret");
    let forged_dir = tempfile::TempDir::new().expect("dir");
    let forged_file = forged_dir.path().join("admin.token");
    std::fs::write(&forged_file, format!("slw_{id}_{other_secret}")).expect("write");
    let refused = access::bootstrap(&stores[0], forged_dir.path(), Some(&forged_file)).await;
    assert!(
        matches!(refused, Err(access::TokenError::TokenIdTaken { .. })),
        "{refused:?}"
    );
    for store in stores {
        store.close().await.expect("close");
    }
}
