//! The Slint shell around [`crate::kiosk::Kiosk`].
//!
//! Owns: copying the kiosk's view-models into the window's properties
//! ([`render`]), turning the window's callbacks into [`UiEvent`]s
//! ([`wire`]), and the runtime that joins the window to the edge
//! ([`run`]). Must not: hold state of its own beyond the window, or decide
//! anything (the kiosk and, behind it, the edge do).

pub mod console;
pub mod driver;
pub mod run;
pub mod screenshot;
pub mod tour;

use std::cell::RefCell;
use std::rc::Rc;

use std::sync::Arc;

use proto::messaging::MediaId;
use proto::tablet::Folder;
use slint::{ComponentHandle, ModelRc, SharedString, VecModel};

use crate::kiosk::{ContactAction, Kiosk, Screen, UiEvent};
use crate::photo::Photo;
use crate::vm::login::Field;
use crate::vm::messages::MediaState;
use crate::vm::{nav, Lang, Tone};

#[allow(clippy::all, clippy::pedantic)]
mod generated {
    slint::include_modules!();
}

use generated as g;
pub use generated::{AppWindow, Theme, Tone as UiTone};

fn s(text: impl AsRef<str>) -> SharedString {
    SharedString::from(text.as_ref())
}

fn model<T: Clone + 'static>(items: Vec<T>) -> ModelRc<T> {
    ModelRc::new(VecModel::from(items))
}

fn tone(tone: Tone) -> g::Tone {
    match tone {
        Tone::Normal => g::Tone::Normal,
        Tone::Warning => g::Tone::Warning,
        Tone::Alert => g::Tone::Alert,
        Tone::Positive => g::Tone::Positive,
    }
}

fn banner(text: Option<String>, t: Tone) -> g::BannerView {
    match text {
        Some(text) => g::BannerView { visible: true, text: s(text), tone: tone(t) },
        None => g::BannerView { visible: false, text: SharedString::new(), tone: g::Tone::Normal },
    }
}

fn screen(screen: Screen) -> g::Screen {
    match screen {
        Screen::Login => g::Screen::Login,
        Screen::Home => g::Screen::Home,
        Screen::Contacts => g::Screen::Contacts,
        Screen::Call => g::Screen::Call,
        Screen::Mailbox => g::Screen::Mailbox,
        Screen::Message => g::Screen::Message,
        Screen::Compose => g::Screen::Compose,
        Screen::Stamps => g::Screen::Stamps,
        Screen::Settings => g::Screen::Settings,
    }
}

fn from_screen(screen: g::Screen) -> Screen {
    match screen {
        g::Screen::Login => Screen::Login,
        g::Screen::Home => Screen::Home,
        g::Screen::Contacts => Screen::Contacts,
        g::Screen::Call => Screen::Call,
        g::Screen::Mailbox => Screen::Mailbox,
        g::Screen::Message => Screen::Message,
        g::Screen::Compose => Screen::Compose,
        g::Screen::Stamps => Screen::Stamps,
        g::Screen::Settings => Screen::Settings,
    }
}

/// Copies everything the kiosk shows into the window.
pub fn render(kiosk: &Kiosk, window: &AppWindow) {
    let lang = kiosk.lang();
    window.global::<g::Theme>().set_text_scale(kiosk.settings().text_scale());
    window.set_screen(screen(kiosk.screen()));
    let nav_vm = kiosk.nav();
    window.set_nav(g::NavView {
        resident: s(&nav_vm.resident),
        home: s(&nav_vm.home),
        contacts: s(&nav_vm.contacts),
        messages: s(&nav_vm.messages),
        stamps: s(&nav_vm.stamps),
        settings: s(&nav_vm.settings),
        logout: s(&nav_vm.logout),
    });
    window.set_offline(banner(kiosk.offline_banner(), Tone::Warning));
    window.set_lockdown(banner(kiosk.lockdown_banner(), Tone::Alert));
    render_login(kiosk, window);
    match kiosk.screen() {
        Screen::Login => {}
        Screen::Home => render_home(kiosk, window, lang),
        Screen::Contacts => render_contacts(kiosk, window, lang),
        Screen::Call => render_call(kiosk, window, lang),
        Screen::Mailbox => render_mailbox(kiosk, window, lang),
        Screen::Message => render_message(kiosk, window, &nav_vm, lang),
        Screen::Compose => render_compose(kiosk, window),
        Screen::Stamps => render_stamps(kiosk, window, lang),
        Screen::Settings => render_settings(kiosk, window),
    }
}

fn render_login(kiosk: &Kiosk, window: &AppWindow) {
    let v = kiosk.login_view();
    let keys = v
        .keys
        .iter()
        .map(|k| g::KeyView { text: s(&k.text), accessible: s(&k.accessible), digit: i32::from(k.digit) })
        .collect();
    window.set_login(g::LoginView {
        title: s(&v.title),
        id_label: s(&v.id_label),
        id_text: s(&v.id_text),
        id_active: v.id_active,
        pin_label: s(&v.pin_label),
        pin_dots: s(&v.pin_dots),
        pin_active: v.pin_active,
        pin_accessible: s(&v.pin_accessible),
        keys: model(keys),
        delete_label: s(&v.delete_label),
        delete_accessible: s(&v.delete_accessible),
        clear_label: s(&v.clear_label),
        clear_accessible: s(&v.clear_accessible),
        submit_label: s(&v.submit_label),
        keypad_enabled: v.keypad_enabled,
        submit_enabled: v.submit_enabled,
        message: s(&v.message),
        message_tone: tone(v.message_tone),
        language_label: s(&v.language_label),
        languages: model(
            v.languages
                .iter()
                .map(|l| g::LanguageChoice {
                    name: s(&l.name),
                    accessible: s(&l.accessible),
                    selected: l.selected,
                })
                .collect(),
        ),
    });
}

fn render_home(kiosk: &Kiosk, window: &AppWindow, lang: Lang) {
    let Some(v) = kiosk.home() else {
        window.set_home(g::HomeView { greeting: s(nav::loading(lang)), ..Default::default() });
        return;
    };
    let rows = v
        .video_balances
        .iter()
        .map(|r| g::VideoBalanceRow {
            name: s(&r.name),
            balance_text: s(&r.balance_text),
            rate_text: s(&r.rate_text),
            accessible: s(&r.accessible),
        })
        .collect();
    window.set_home(g::HomeView {
        greeting: s(&v.greeting),
        debit_label: s(&v.debit_label),
        debit_text: s(&v.debit_text),
        video_balances_title: s(&v.video_balances_title),
        video_balances: model(rows),
        unread_text: s(&v.unread_text),
        unread: i32::try_from(v.unread).unwrap_or(i32::MAX),
        open_messages_label: s(kiosk.nav().messages),
        hours_title: s(&v.hours_title),
        today_text: s(&v.today_text),
        hours_status_text: s(&v.hours_status_text),
        hours_tone: tone(v.hours_tone),
    });
}

fn service(action: &crate::vm::contacts::ServiceAction) -> g::ServiceView {
    g::ServiceView {
        label: s(&action.label),
        accessible: s(&action.accessible),
        status: s(&action.status),
        reason: s(&action.reason),
        enabled: action.enabled,
        tone: tone(action.tone),
    }
}

fn render_contacts(kiosk: &Kiosk, window: &AppWindow, lang: Lang) {
    let Some(v) = kiosk.contacts() else {
        window.set_contacts(g::ContactsView { title: s(nav::loading(lang)), ..Default::default() });
        return;
    };
    let rows = v
        .rows
        .iter()
        .map(|r| g::ContactRowView {
            name: s(&r.name),
            numbers: s(r.numbers.join(", ")),
            voice: service(&r.voice),
            video: service(&r.video),
            message: service(&r.message),
            show_video_balance: r.show_video_balance,
            video_balance_text: s(&r.video_balance_text),
            video_rate_text: s(&r.video_rate_text),
        })
        .collect();
    window.set_contacts(g::ContactsView {
        title: s(&v.title),
        rows: model(rows),
        empty_text: s(&v.empty_text),
    });
}

fn render_call(kiosk: &Kiosk, window: &AppWindow, lang: Lang) {
    let Some(call) = kiosk.call() else { return };
    let v = call.view(lang);
    window.set_call(g::CallView {
        title: s(&v.title),
        contact_name: s(&v.contact_name),
        status_text: s(&v.status_text),
        show_timer: v.show_timer,
        timer_text: s(&v.timer_text),
        timer_accessible: s(&v.timer_accessible),
        remaining_label: s(&v.remaining_label),
        remaining_text: s(&v.remaining_text),
        warning_text: s(&v.warning_text),
        timer_tone: tone(v.timer_tone),
        is_over: v.is_over,
        end_text: s(&v.end_text),
        end_tone: tone(v.end_tone),
        hang_up_enabled: v.hang_up_enabled,
        hang_up_label: s(&v.hang_up_label),
        hang_up_accessible: s(&v.hang_up_accessible),
        close_label: s(&v.close_label),
        video: v.video,
        remote_video_label: s(&v.remote_video_label),
        self_view_label: s(&v.self_view_label),
    });
}

fn render_mailbox(kiosk: &Kiosk, window: &AppWindow, lang: Lang) {
    let Some(v) = kiosk.mailbox() else {
        window.set_mailbox(g::MailboxView { title: s(nav::loading(lang)), ..Default::default() });
        return;
    };
    let tabs = v
        .tabs
        .iter()
        .map(|t| g::FolderTabView { label: s(&t.label), selected: t.selected, badge: s(&t.badge) })
        .collect();
    let rows = v
        .rows
        .iter()
        .map(|r| g::MailRowView {
            contact_name: s(&r.contact_name),
            subject: s(&r.subject),
            date: s(&r.date),
            attachments: s(&r.attachments),
            state: s(&r.state),
            tone: tone(r.tone),
            unread: r.unread,
            unread_marker: s(&r.unread_marker),
        })
        .collect();
    window.set_mailbox(g::MailboxView {
        title: s(&v.title),
        tabs: model(tabs),
        rows: model(rows),
        empty_text: s(&v.empty_text),
        compose_label: s(&v.compose_label),
    });
}

/// A photo's media, its pixels as the kiosk holds them, and their Slint image.
type CachedPhoto = (MediaId, Arc<[u8]>, slint::Image);

thread_local! {
    /// The open message's photos as Slint images, so a redraw (every tick)
    /// does not copy their pixels again. Keyed by media and checked against
    /// the kiosk's pixels (kept alive here, so the pointer stays unique):
    /// a cache only, the kiosk still decides what is shown.
    static PHOTO_IMAGES: RefCell<Vec<CachedPhoto>> = const { RefCell::new(Vec::new()) };
}

/// The Slint image of a decoded photo, made once per photo.
fn photo_image(media: MediaId, photo: &Photo) -> slint::Image {
    PHOTO_IMAGES.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some((_, _, image)) =
            cache.iter().find(|(m, px, _)| *m == media && Arc::ptr_eq(px, &photo.rgba))
        {
            return image.clone();
        }
        let buffer = slint::SharedPixelBuffer::<slint::Rgba8Pixel>::clone_from_slice(
            &photo.rgba,
            photo.width,
            photo.height,
        );
        let image = slint::Image::from_rgba8(buffer);
        cache.retain(|(m, _, _)| *m != media);
        cache.push((media, photo.rgba.clone(), image.clone()));
        image
    })
}

/// Lets go of photos no longer on screen.
fn forget_photos_except(keep: &[MediaId]) {
    PHOTO_IMAGES.with(|cache| cache.borrow_mut().retain(|(m, _, _)| keep.contains(m)));
}

fn render_message(kiosk: &Kiosk, window: &AppWindow, nav_vm: &nav::NavVm, lang: Lang) {
    let Some(v) = kiosk.message_vm() else { return };
    let shown: Vec<MediaId> = v.attachments.iter().filter_map(|a| a.media).collect();
    forget_photos_except(&shown);
    let attachments = v
        .attachments
        .iter()
        .map(|a| {
            let state = a.media.and_then(|m| kiosk.media_state(m));
            let photo = a.media.and_then(|m| kiosk.photo(m).map(|p| photo_image(m, p)));
            g::AttachmentView {
                label: s(&a.label),
                duration: s(&a.duration),
                is_videogram: a.kind == crate::vm::messages::AttachmentKind::VideoGram,
                state_text: s(state.map(|st| st.words(lang)).unwrap_or_default()),
                has_picture: photo.is_some(),
                picture: photo.unwrap_or_default(),
                play_enabled: state == Some(MediaState::Ready),
            }
        })
        .collect();
    let actions = v.actions.iter().map(|a| g::MessageActionView { label: s(&a.label) }).collect();
    let playback = kiosk.playback();
    window.set_message(g::MessageView {
        header: s(&v.header),
        subject: s(&v.subject),
        date: s(&v.date),
        body: s(&v.body),
        state: s(&v.state),
        tone: tone(v.tone),
        problem: s(&v.problem),
        attachments_title: s(&v.attachments_title),
        attachments: model(attachments),
        actions: model(actions),
        back_label: s(&nav_vm.back),
        play_label: s(playback.map(|p| p.button_label(lang)).unwrap_or_default()),
        progress_label: s(playback.map(|p| p.progress_label()).unwrap_or_default()),
        progress: playback.map_or(0.0, |p| p.fraction()),
    });
}

fn render_compose(kiosk: &Kiosk, window: &AppWindow) {
    let Some(compose) = kiosk.compose() else { return };
    let v = compose.screen();
    let picker = kiosk.picker();
    let attachments = v
        .attachments
        .iter()
        .map(|a| g::ComposeAttachmentView { label: s(&a.label), remove_label: s(&a.remove_label) })
        .collect();
    let cards = picker
        .as_ref()
        .map(|p| {
            p.groups
                .iter()
                .flat_map(|g| {
                    g.cards.iter().map(|c| g::ECardView { category: s(&g.category), title: s(&c.title) })
                })
                .collect()
        })
        .unwrap_or_default();
    window.set_compose(g::ComposeView {
        title: s(&v.title),
        to: s(&v.to),
        stamps: s(&v.stamps),
        stamps_tone: tone(v.stamps_tone),
        go_to_stamps: v.go_to_stamps,
        buy_stamps_label: s(&v.buy_stamps_label),
        subject_label: s(&v.subject_label),
        body_label: s(&v.body_label),
        counter: s(&v.counter),
        counter_tone: tone(v.counter_tone),
        attachments_title: s(&v.attachments_title),
        attachments: model(attachments),
        add_ecard_label: s(&v.add_ecard_label),
        add_ecard_enabled: v.add_ecard_enabled,
        notice: s(&v.notice),
        notice_tone: tone(v.notice_tone),
        send_label: s(&v.send_label),
        send_enabled: v.send_enabled,
        save_label: s(&v.save_label),
        save_enabled: v.save_enabled,
        picker_open: picker.is_some(),
        picker_title: s(picker.as_ref().map(|p| p.title.as_str()).unwrap_or_default()),
        picker_cards: model(cards),
        picker_cancel_label: s(picker.as_ref().map(|p| p.cancel_label.as_str()).unwrap_or_default()),
    });
    // Only pushed when they differ, so the caret stays where the resident left it.
    if window.get_compose_subject().as_str() != v.subject {
        window.set_compose_subject(s(&v.subject));
    }
    if window.get_compose_body().as_str() != v.body {
        window.set_compose_body(s(&v.body));
    }
}

fn render_stamps(kiosk: &Kiosk, window: &AppWindow, lang: Lang) {
    let Some(v) = kiosk.stamps_vm() else {
        window.set_stamps(g::StampsView { title: s(nav::loading(lang)), ..Default::default() });
        return;
    };
    let packages = v
        .packages
        .iter()
        .map(|p| g::PackageView {
            stamps: s(&p.stamps),
            price: s(&p.price),
            buy_label: s(&p.buy_label),
            enabled: p.enabled,
        })
        .collect();
    let contacts = v
        .contacts
        .iter()
        .map(|c| g::ContactStampsView {
            name: s(&c.name),
            available: s(&c.available),
            awaiting: s(&c.awaiting),
            selected: c.selected,
        })
        .collect();
    let purchases = v
        .purchases
        .iter()
        .map(|p| g::PurchaseRowView { summary: s(&p.summary), state: s(&p.state), tone: tone(p.tone) })
        .collect();
    let confirm = kiosk.confirm();
    let result = kiosk.purchase_result();
    window.set_stamps(g::StampsView {
        title: s(&v.title),
        balance: s(&v.balance),
        heading: s(&v.heading),
        selected_stamps: s(&v.selected_stamps),
        packages: model(packages),
        empty_text: s(&v.empty_text),
        contacts: model(contacts),
        purchases: model(purchases),
        confirm_open: confirm.is_some(),
        confirm_text: s(confirm.map(|c| c.text.as_str()).unwrap_or_default()),
        confirm_label: s(confirm.map(|c| c.confirm_label.as_str()).unwrap_or_default()),
        cancel_label: s(confirm.map(|c| c.cancel_label.as_str()).unwrap_or_default()),
        result: banner(result.map(|r| r.text.clone()), result.map_or(Tone::Normal, |r| r.tone)),
    });
}

fn render_settings(kiosk: &Kiosk, window: &AppWindow) {
    let v = kiosk.settings_vm();
    let languages =
        v.languages.iter().map(|l| g::LanguageView { name: s(&l.name), selected: l.selected }).collect();
    window.set_settings(g::SettingsView {
        title: s(&v.title),
        language_label: s(&v.language_label),
        languages: model(languages),
        large_text_label: s(&v.large_text_label),
        large_text_hint: s(&v.large_text_hint),
        large_text_on: v.large_text_on,
        large_text_state: s(&v.large_text_state),
    });
}

/// Connects the window's callbacks: each touch becomes a [`UiEvent`] for `sink`.
pub fn wire(window: &AppWindow, kiosk: &Rc<RefCell<Kiosk>>, sink: Rc<dyn Fn(UiEvent)>) {
    let send = move |sink: &Rc<dyn Fn(UiEvent)>| {
        let sink = sink.clone();
        move |event: UiEvent| sink(event)
    };
    let on = send(&sink);
    window.on_navigate(move |target| on(UiEvent::Navigate(from_screen(target))));
    let on = send(&sink);
    window.on_logout(move || on(UiEvent::Logout));
    let on = send(&sink);
    window.on_reset(move || on(UiEvent::Reset));
    let on = send(&sink);
    window.on_login_select_field(move |f| {
        on(UiEvent::LoginSelectField(if f == 0 { Field::ResidentId } else { Field::Pin }))
    });
    let on = send(&sink);
    window.on_login_digit(move |d| {
        if let Ok(digit) = u8::try_from(d) {
            on(UiEvent::LoginDigit(digit));
        }
    });
    let on = send(&sink);
    window.on_login_delete(move || on(UiEvent::LoginDelete));
    let on = send(&sink);
    window.on_login_clear(move || on(UiEvent::LoginClear));
    let on = send(&sink);
    window.on_login_submit(move || on(UiEvent::LoginSubmit));
    let on = send(&sink);
    window.on_contact_action(move |row, service| {
        let action = match service {
            0 => ContactAction::VoiceCall,
            1 => ContactAction::VideoCall,
            _ => ContactAction::Message,
        };
        if let Ok(row) = usize::try_from(row) {
            on(UiEvent::ContactAction { row, action });
        }
    });
    let on = send(&sink);
    window.on_hang_up(move || on(UiEvent::HangUp));
    let on = send(&sink);
    window.on_close_call(move || on(UiEvent::CloseCall));
    let on = send(&sink);
    let k = kiosk.clone();
    window.on_open_folder(move |i| {
        let from_vm = k
            .borrow()
            .mailbox()
            .and_then(|m| usize::try_from(i).ok().and_then(|i| m.tabs.get(i).map(|t| t.folder)));
        let folder = from_vm.unwrap_or(match i {
            1 => Folder::Sent,
            2 => Folder::Drafts,
            _ => Folder::Inbox,
        });
        on(UiEvent::OpenFolder(folder));
    });
    let on = send(&sink);
    window.on_open_message(move |i| {
        if let Ok(i) = usize::try_from(i) {
            on(UiEvent::OpenMessage(i));
        }
    });
    let on = send(&sink);
    window.on_start_compose(move || on(UiEvent::StartCompose));
    let on = send(&sink);
    window.on_message_back(move || on(UiEvent::MessageBack));
    let on = send(&sink);
    window.on_message_action(move |i| {
        if let Ok(i) = usize::try_from(i) {
            on(UiEvent::MessageAction(i));
        }
    });
    let on = send(&sink);
    window.on_play_attachment(move |_| on(UiEvent::PlayAttachment));
    let on = send(&sink);
    window.on_compose_subject_edited(move |text| on(UiEvent::ComposeSubject(text.to_string())));
    let on = send(&sink);
    window.on_compose_body_edited(move |text| on(UiEvent::ComposeBody(text.to_string())));
    let on = send(&sink);
    window.on_compose_buy_stamps(move || on(UiEvent::ComposeBuyStamps));
    let on = send(&sink);
    window.on_compose_add_ecard(move || on(UiEvent::ComposeOpenPicker));
    let on = send(&sink);
    window.on_compose_pick_ecard(move |i| {
        if let Ok(i) = usize::try_from(i) {
            on(UiEvent::ComposePickECard(i));
        }
    });
    let on = send(&sink);
    window.on_compose_close_picker(move || on(UiEvent::ComposeClosePicker));
    let on = send(&sink);
    window.on_compose_remove_attachment(move |i| {
        if let Ok(i) = usize::try_from(i) {
            on(UiEvent::ComposeRemoveAttachment(i));
        }
    });
    let on = send(&sink);
    window.on_compose_send(move || on(UiEvent::ComposeSend));
    let on = send(&sink);
    window.on_compose_save(move || on(UiEvent::ComposeSave));
    let on = send(&sink);
    window.on_stamps_select_contact(move |i| {
        if let Ok(i) = usize::try_from(i) {
            on(UiEvent::StampsSelectContact(i));
        }
    });
    let on = send(&sink);
    window.on_stamps_buy(move |i| {
        if let Ok(i) = usize::try_from(i) {
            on(UiEvent::StampsBuy(i));
        }
    });
    let on = send(&sink);
    window.on_stamps_confirm(move || on(UiEvent::StampsConfirm));
    let on = send(&sink);
    window.on_stamps_cancel(move || on(UiEvent::StampsCancel));
    let on = send(&sink);
    window.on_choose_language(move |i| {
        if let Some(lang) = usize::try_from(i).ok().and_then(|i| Lang::ALL.get(i)) {
            on(UiEvent::ChooseLanguage(*lang));
        }
    });
    let on = send(&sink);
    window.on_toggle_large_text(move || on(UiEvent::ToggleLargeText));
}

/// Which picture of the call screen a frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallPicture {
    /// The contact's video.
    Remote,
    /// Our own camera, in the corner.
    SelfView,
}

/// Puts a picture from the call's media leg on the call screen, but only
/// while a video call is live: pictures still in flight when a call ends
/// (or arriving in a voice call) are dropped, so the next resident on a
/// shared tablet never sees the last one's camera.
pub fn show_call_picture(
    kiosk: &Kiosk,
    window: &AppWindow,
    picture: CallPicture,
    rgba: &[u8],
    width: u32,
    height: u32,
) -> bool {
    let live_video = kiosk.call().is_some_and(|c| !c.is_over() && c.kind() == proto::domain::CallKind::Video);
    if live_video {
        show_frame(window, picture == CallPicture::Remote, rgba, width, height);
    }
    live_video
}

/// Empties both pictures of the call screen (a media leg started or stopped).
pub fn clear_call_pictures(window: &AppWindow) {
    window.set_remote_frame(slint::Image::default());
    window.set_self_frame(slint::Image::default());
}

/// Puts a decoded RGBA picture on the call screen (`remote` or self view).
pub fn show_frame(window: &AppWindow, remote: bool, rgba: &[u8], width: u32, height: u32) {
    let expected = usize::try_from(u64::from(width) * u64::from(height) * 4).unwrap_or(usize::MAX);
    if rgba.len() != expected {
        tracing::warn!(len = rgba.len(), width, height, "dropping a video frame of the wrong size");
        return;
    }
    let buffer = slint::SharedPixelBuffer::<slint::Rgba8Pixel>::clone_from_slice(rgba, width, height);
    let image = slint::Image::from_rgba8(buffer);
    if remote {
        window.set_remote_frame(image);
    } else {
        window.set_self_frame(image);
    }
}

/// Puts a picture of the VideoGram run `play` on the message screen, but
/// only while that run is the one on screen: a picture still in flight from
/// a run stopped since (the message was left, the session ended) is dropped.
pub fn show_videogram_picture(
    kiosk: &Kiosk,
    window: &AppWindow,
    play: u64,
    rgba: &[u8],
    width: u32,
    height: u32,
) -> bool {
    if kiosk.videogram_on_screen() != Some(play) {
        return false;
    }
    let expected = usize::try_from(u64::from(width) * u64::from(height) * 4).unwrap_or(usize::MAX);
    if rgba.len() != expected {
        tracing::warn!(len = rgba.len(), width, height, "dropping a VideoGram frame of the wrong size");
        return false;
    }
    let buffer = slint::SharedPixelBuffer::<slint::Rgba8Pixel>::clone_from_slice(rgba, width, height);
    window.set_videogram_frame(slint::Image::from_rgba8(buffer));
    window.set_videogram_showing(true);
    true
}

/// Empties the VideoGram picture (a run started or stopped).
pub fn clear_videogram_picture(window: &AppWindow) {
    window.set_videogram_showing(false);
    window.set_videogram_frame(slint::Image::default());
}
