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
