use super::*;

#[test]
fn voice_grants_carry_audio_only() {
    let voice = MediaGrant { call_id: CallId(1), kind: CallKind::Voice };
    assert!(voice.allows(AUDIO_TRACK));
    assert!(!voice.allows(VIDEO_TRACK));
    assert!(!voice.allows("screen"));
    let video = MediaGrant { call_id: CallId(1), kind: CallKind::Video };
    assert!(video.allows(AUDIO_TRACK) && video.allows(VIDEO_TRACK));
    assert!(!video.allows("") && !video.allows("video2"));
}

fn ns(path: &str) -> media_link::moq_transport::coding::TrackNamespace {
    media_link::moq_transport::coding::TrackNamespace::from_utf8_path(path)
}

#[test]
fn only_the_placing_device_may_announce_the_resident_side_of_a_live_call() {
    let live = |kind| {
        move |id: CallId| {
            (id == CallId(42)).then(|| LiveCall { kind, owner_fingerprint: Some("tablet-a".to_string()) })
        }
    };
    let ok = admit("f1", &ns("facility/f1/call/42/resident"), "tablet-a", live(CallKind::Video));
    assert_eq!(ok, Ok(MediaGrant { call_id: CallId(42), kind: CallKind::Video }));
    let voice = admit("f1", &ns("facility/f1/call/42/resident"), "tablet-a", live(CallKind::Voice));
    assert_eq!(voice.map(|g| g.kind), Ok(CallKind::Voice));
    let cases = [
        ("facility/f1/call/42/resident", "tablet-b", MediaRefusal::NotYourCall),
        ("facility/f1/call/43/resident", "tablet-a", MediaRefusal::NoSuchCall),
        ("facility/f1/call/42/contact", "tablet-a", MediaRefusal::WrongSide),
        ("facility/f2/call/42/resident", "tablet-a", MediaRefusal::OtherFacility),
        ("facility/f1/call/42", "tablet-a", MediaRefusal::NotACall),
        ("anything/else", "tablet-a", MediaRefusal::NotACall),
    ];
    for (path, device, refusal) in cases {
        assert_eq!(
            admit("f1", &ns(path), device, live(CallKind::Video)),
            Err(refusal),
            "{path} from {device}"
        );
    }
    // The placing tablet's connection is gone: nobody may announce for it.
    let orphaned = admit("f1", &ns("facility/f1/call/42/resident"), "tablet-a", |_| {
        Some(LiveCall { kind: CallKind::Video, owner_fingerprint: None })
    });
    assert_eq!(orphaned, Err(MediaRefusal::NotYourCall));
}
