//! central-sim's QUIC server in-process on loopback, driven the way an edge
//! box drives it: with the uplink bundle `init` issued.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use central_sim::admin;
use central_sim::db::Db;
use central_sim::fixture::demo_ids as ids;
use central_sim::server::Server;
use central_sim::state;
use net::quic::{self, CENTRAL_ALPN};
use net::{rpc, Authority, Bundle};
use proto::central::{CentralError, CentralToEdge, Change, ChangeBatch, EdgeToCentral, Entity};
use proto::domain::*;
use proto::MAX_CENTRAL_FRAME;
use tokio::sync::oneshot;

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), central_sim::server::ServerError>>,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap().unwrap();
    }
}

async fn start(dir: &Path) -> Running {
    let server = Server::bind(dir, "127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    // `run` announces readiness through the address file.
    for _ in 0..100 {
        if std::fs::read_to_string(state::addr_path(dir)).is_ok_and(|a| a.trim() == addr.to_string()) {
            return Running { addr, stop: Some(stop), task };
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("central.addr never appeared");
}

async fn connect(addr: SocketAddr, bundle: &Bundle) -> quinn::Connection {
    let endpoint = quic::client_endpoint(bundle, CENTRAL_ALPN).unwrap();
    quic::connect(&endpoint, addr, state::SERVER_NAME).await.unwrap()
}

fn demo() -> FacilityId {
    FacilityId::new(ids::FACILITY)
}

async fn changes(conn: &quinn::Connection, facility: FacilityId, since: u64, limit: u32) -> CentralToEdge {
    resync_page(conn, facility, since, limit, 0).await
}

async fn resync_page(
    conn: &quinn::Connection,
    facility: FacilityId,
    since: u64,
    limit: u32,
    resync_floor: u64,
) -> CentralToEdge {
    let request = EdgeToCentral::Changes { facility, since, limit, resync_floor };
    rpc::call(conn, &request, MAX_CENTRAL_FRAME).await.unwrap()
}

fn batch(answer: CentralToEdge) -> ChangeBatch {
    match answer {
        CentralToEdge::Changes(batch) => batch,
        other => panic!("expected a batch, got {other:?}"),
    }
}

fn initialized() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    state::init(dir.path(), None).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_fetches_the_snapshot_and_then_an_admin_change() {
    let dir = initialized();
    let server = start(dir.path()).await;
    let edge = Bundle::load(&state::edge_bundle_path(dir.path(), &demo())).unwrap();
    let conn = connect(server.addr, &edge).await;

    let hello = EdgeToCentral::Hello { facility: demo(), agent_version: "test".into(), running: None };
    let welcome: CentralToEdge = rpc::call(&conn, &hello, MAX_CENTRAL_FRAME).await.unwrap();
    let head = Db::open(dir.path()).unwrap().head_info().unwrap().head;
    assert_eq!(welcome, CentralToEdge::Welcome { facility: demo(), head_cursor: head, release: None });

    // Page through the snapshot.
    let mut cursor = 0;
    let mut contacts = 0;
    let mut pages = 0;
    loop {
        let page = batch(changes(&conn, demo(), cursor, 100).await);
        assert_eq!(page.since, cursor);
        contacts += page.changes.iter().filter(|c| matches!(c, Change::Upsert(Entity::Contact(_)))).count();
        cursor = page.next_cursor;
        pages += 1;
        if !page.more {
            break;
        }
    }
    assert_eq!(contacts, 200);
    assert_eq!(pages, head.div_ceil(100));
    assert_eq!(cursor, head);

    // A block made with the admin CLI while serving shows up after the cursor.
    let mut db = Db::open(dir.path()).unwrap();
    let block = admin::AdminCommand::Block {
        number: ids::NUMBER_APPROVED.into(),
        scope: admin::ScopeArgs { facility: None, all: true },
    };
    admin::run(&mut db, &block).unwrap();
    let page = batch(changes(&conn, demo(), cursor, 100).await);
    let expected = BlockRecord { number: ids::NUMBER_APPROVED.into(), scope: BlockScope::AllFacilities };
    assert_eq!(page.changes, vec![Change::Upsert(Entity::Block(expected))]);
    assert_eq!(page.next_cursor, head + 1);
    assert!(!page.more);

    server.stop().await;
    assert!(!state::addr_path(dir.path()).exists(), "the address file is removed on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_for_another_or_an_unknown_facility_are_refused() {
    let dir = initialized();
    let server = start(dir.path()).await;
    let edge = Bundle::load(&state::edge_bundle_path(dir.path(), &demo())).unwrap();
    let conn = connect(server.addr, &edge).await;

    let other = FacilityId::new(ids::OTHER_FACILITY);
    assert_eq!(
        changes(&conn, other.clone(), 0, 10).await,
        CentralToEdge::Error(CentralError::WrongFacility(other.clone()))
    );
    let hello = EdgeToCentral::Hello { facility: other.clone(), agent_version: "test".into(), running: None };
    let refused: CentralToEdge = rpc::call(&conn, &hello, MAX_CENTRAL_FRAME).await.unwrap();
    assert_eq!(refused, CentralToEdge::Error(CentralError::WrongFacility(other)));

    // A certificate from central's CA for a facility central does not hold.
    let authority = Authority::load_or_create(&dir.path().join(state::CA_DIR), state::CA_NAME).unwrap();
    let ghost = FacilityId::new("ghost-ca-09");
    let ghost_conn = connect(server.addr, &authority.issue_client(ghost.as_str()).unwrap()).await;
    assert_eq!(
        changes(&ghost_conn, ghost.clone(), 0, 10).await,
        CentralToEdge::Error(CentralError::UnknownFacility(ghost))
    );

    // A certificate from another CA does not get through the handshake.
    let foreign_dir = tempfile::tempdir().unwrap();
    let foreign = Authority::load_or_create(foreign_dir.path(), "Someone Else").unwrap();
    let mut foreign_bundle = foreign.issue_client(ids::FACILITY).unwrap();
    // Trust the real server so that only the client side is at fault.
    foreign_bundle.ca_pem = edge.ca_pem.clone();
    let endpoint = quic::client_endpoint(&foreign_bundle, CENTRAL_ALPN).unwrap();
    let refused = match quic::connect(&endpoint, server.addr, state::SERVER_NAME).await {
        Err(_) => true,
        // TLS 1.3 may finish the client side before the server's verdict arrives.
        Ok(conn) => rpc::call::<_, CentralToEdge>(
            &conn,
            &EdgeToCentral::Changes { facility: demo(), since: 0, limit: 1, resync_floor: 0 },
            MAX_CENTRAL_FRAME,
        )
        .await
        .is_err(),
    };
    assert!(refused, "a foreign certificate must be refused");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_get_a_typed_error_and_change_nothing() {
    let dir = initialized();
    let before = Db::open(dir.path()).unwrap().all_rows().unwrap();
    let server = start(dir.path()).await;
    let edge = Bundle::load(&state::edge_bundle_path(dir.path(), &demo())).unwrap();
    let conn = connect(server.addr, &edge).await;

    let garbage: [&[u8]; 3] = [
        // Right version byte, body that is no EdgeToCentral.
        &[0, 0, 0, 4, proto::PROTOCOL_VERSION, 0xff, 0xff, 0xff],
        // Unknown protocol version.
        &[0, 0, 0, 2, 99, 0],
        // Announces more than the frame limit.
        &[0xff, 0xff, 0xff, 0xff],
    ];
    for bytes in garbage {
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(bytes).await.unwrap();
        send.finish().unwrap();
        let answer: CentralToEdge = rpc::read_frame(&mut recv, MAX_CENTRAL_FRAME).await.unwrap();
        assert!(matches!(answer, CentralToEdge::Error(CentralError::Malformed(_))), "{bytes:?}: {answer:?}");
    }
    // The connection still serves well-formed requests afterwards.
    let page = batch(changes(&conn, demo(), 0, 5).await);
    assert_eq!(page.changes.len(), 5);
    server.stop().await;
    assert_eq!(Db::open(dir.path()).unwrap().all_rows().unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_cursor_is_told_to_resync() {
    let dir = initialized();
    let mut db = Db::open(dir.path()).unwrap();
    let old_cursor = db.head_info().unwrap().head;
    admin::run(&mut db, &admin::AdminCommand::Unsuspend { id: 1 }).unwrap();
    admin::run(&mut db, &admin::AdminCommand::Unsuspend { id: 2 }).unwrap();
    admin::run(&mut db, &admin::AdminCommand::Compact { keep_last: 0 }).unwrap();
    let horizon = db.head_info().unwrap().horizon;

    let server = start(dir.path()).await;
    let edge = Bundle::load(&state::edge_bundle_path(dir.path(), &demo())).unwrap();
    let conn = connect(server.addr, &edge).await;
    assert_eq!(
        changes(&conn, demo(), old_cursor, 100).await,
        CentralToEdge::CursorExpired { since: old_cursor, oldest_valid: horizon }
    );
    let snapshot = batch(changes(&conn, demo(), 0, 5000).await);
    assert!(!snapshot.more);
    assert!(snapshot.changes.iter().all(|c| !matches!(c, Change::Upsert(Entity::Suspension(_)))));

    // The resync in small pages walks cursors below the horizon; the floor
    // it sends keeps those pages from expiring.
    let mut since = 0;
    let mut resynced = Vec::new();
    let mut below_horizon = 0;
    loop {
        let page = batch(resync_page(&conn, demo(), since, 50, horizon).await);
        if since != 0 && since < horizon {
            below_horizon += 1;
        }
        resynced.extend(page.changes);
        since = page.next_cursor;
        if !page.more {
            break;
        }
    }
    assert!(below_horizon > 0, "the resync must have paged below the horizon");
    assert_eq!(resynced, snapshot.changes);
    // Without the floor, the same below-horizon cursor expires.
    assert_eq!(
        changes(&conn, demo(), 50, 50).await,
        CentralToEdge::CursorExpired { since: 50, oldest_valid: horizon }
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_delivers_its_outbox_and_a_retry_is_a_duplicate() {
    use proto::messaging::*;

    let dir = initialized();
    let cursor = Db::open(dir.path()).unwrap().head_info().unwrap().head;
    let server = start(dir.path()).await;
    let edge = Bundle::load(&state::edge_bundle_path(dir.path(), &demo())).unwrap();
    let conn = connect(server.addr, &edge).await;

    let at: jiff::Timestamp = "2025-04-01T18:00:00Z".parse().unwrap();
    let resident = ResidentId::new(ids::RESIDENT);
    let contact = ContactId(ids::CONTACT_VOICE_PENDING);
    let purchase_key = IdempotencyKey::from_u128(0x1111);
    let message = Message {
        id: MessageId::from_u128(0x2222),
        resident: resident.clone(),
        contact,
        direction: Direction::ResidentToContact,
        subject: "Hi".into(),
        body: "Bought a stamp just for this.".into(),
        attachments: vec![],
        sent_at: at,
    };
    let items = vec![
        OutboxItem {
            key: purchase_key,
            created_at: at,
            body: OutboxBody::BuyStamps(StampPurchase {
                resident: resident.clone(),
                contact,
                package: PackageId(ids::PACKAGE_ONE_STAMP),
                stamps: 1,
                price_cents: 50,
                bought_at: at,
            }),
        },
        OutboxItem {
            key: IdempotencyKey::from_u128(0x3333),
            created_at: at,
            body: OutboxBody::SendMessage { message: message.clone(), funded_by: Some(purchase_key) },
        },
    ];
    let request = EdgeToCentral::Deliver { facility: demo(), items: items.clone() };
    let CentralToEdge::Delivered { acks } = rpc::call(&conn, &request, MAX_CENTRAL_FRAME).await.unwrap()
    else {
        panic!("expected Delivered");
    };
    let applied: Vec<u64> = acks
        .iter()
        .zip(&items)
        .map(|(ack, item)| {
            assert_eq!(ack.key, item.key);
            match ack.outcome {
                DeliveryOutcome::Accepted { applied_at } => applied_at,
                ref other => panic!("{other:?}"),
            }
        })
        .collect();

    // The ack is lost; the edge sends the same batch again.
    let CentralToEdge::Delivered { acks: again } =
        rpc::call(&conn, &request, MAX_CENTRAL_FRAME).await.unwrap()
    else {
        panic!("expected Delivered");
    };
    let replayed: Vec<DeliveryOutcome> = again.into_iter().map(|a| a.outcome).collect();
    assert_eq!(
        replayed,
        applied.iter().map(|&applied_at| DeliveryOutcome::Duplicate { applied_at }).collect::<Vec<_>>()
    );

    // The feed carries the debit, the stamp bought and spent, and the message
    // pending review, up to the message's applied_at.
    let page = batch(changes(&conn, demo(), cursor, 100).await);
    assert_eq!(page.next_cursor, applied[1]);
    assert!(page.changes.iter().any(|c| matches!(c,
        Change::Upsert(Entity::Resident(r)) if r.id == resident && r.debit_balance_cents == 2450)));
    assert!(page.changes.iter().any(|c| matches!(c,
        Change::Upsert(Entity::StampCount(s)) if s.contact == contact && s.stamps == 0)));
    assert!(page
        .changes
        .contains(&Change::Upsert(Entity::Mail(MailRecord { message, review: Review::Pending }))));

    // Another facility's delivery on this connection is refused whole.
    let other = FacilityId::new(ids::OTHER_FACILITY);
    let wrong = EdgeToCentral::Deliver { facility: other.clone(), items };
    assert_eq!(
        rpc::call::<_, CentralToEdge>(&conn, &wrong, MAX_CENTRAL_FRAME).await.unwrap(),
        CentralToEdge::Error(CentralError::WrongFacility(other))
    );
    server.stop().await;

    let report =
        admin::run(&mut Db::open(dir.path()).unwrap(), &admin::AdminCommand::Deliveries { key: None })
            .unwrap();
    assert_eq!(report["keys"], 2);
    assert_eq!(report["received"], 4);
    assert_eq!(report["applied"], 2);
}
