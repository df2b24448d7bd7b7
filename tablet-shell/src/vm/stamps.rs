//! Buying stamps: packages and prices, the debit money available, stamps
//! per contact, the confirmation step and the result of a purchase.
//!
//! Built from the edge's [`StampShop`] and [`StampBalances`]. Buy buttons
//! are greyed when a package costs more than the money the edge says is
//! available, only to spare the resident a refusal: the edge decides, and
//! its refusal is worded by [`PurchaseResult::from_error`].

use proto::domain::{Cents, ContactId};
use proto::messaging::{MessagingError, PackageId};
use proto::tablet::{Freshness, PurchaseState, PurchaseView, StampBalances, StampShop};

use super::common::money;
use super::messaging_text::{messaging_error, plural, refusal, stamps_offline_banner};
use super::{Lang, Tone};

fn stamps_word(lang: Lang, n: u32) -> String {
    plural(lang, u64::from(n), ("stamp", "stamps"), ("estampilla", "estampillas"))
}

fn awaiting_payment(lang: Lang, n: u32) -> String {
    if n == 0 {
        return String::new();
    }
    plural(
        lang,
        u64::from(n),
        ("awaiting payment", "awaiting payment"),
        ("pendiente de pago", "pendientes de pago"),
    )
}

/// One package on sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRow {
    pub id: PackageId,
    pub stamps_count: u32,
    /// `5 stamps`.
    pub stamps: String,
    /// `$4.75`.
    pub price: String,
    pub buy_label: String,
    /// A contact is chosen and the price is within the available money.
    /// Display only: the edge decides.
    pub enabled: bool,
}

/// One contact's stamps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactStampsRow {
    pub contact: ContactId,
    pub name: String,
    /// `2 stamps`.
    pub available: String,
    /// `1 awaiting payment`; empty when none is.
    pub awaiting: String,
    pub selected: bool,
}

/// A purchase the edge still tracks (queued, or failed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseRow {
    pub contact: ContactId,
    /// `5 stamps for Maria Alvarez, $4.75`.
    pub summary: String,
    /// `Waiting for the connection`, `Confirmed`, `Payment failed: ...`.
    pub state: String,
    pub tone: Tone,
}

/// The stamps screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampsVm {
    pub title: String,
    /// `Available to spend: $25.00`.
    pub balance: String,
    /// Shown while the edge is offline; empty otherwise.
    pub offline_banner: String,
    pub show_offline_banner: bool,
    /// The contact the stamps are bought for.
    pub contact: Option<ContactId>,
    /// `Stamps for Maria Alvarez` or `Choose a contact`.
    pub heading: String,
    /// The chosen contact's `2 stamps, 1 awaiting payment`; empty when none
    /// is chosen.
    pub selected_stamps: String,
    pub packages: Vec<PackageRow>,
    /// Shown when nothing is on sale; empty otherwise.
    pub empty_text: String,
    pub contacts: Vec<ContactStampsRow>,
    pub purchases: Vec<PurchaseRow>,
    lang: Lang,
    available_cents: Cents,
    contact_name: String,
    shop: Vec<(PackageId, u32, Cents)>,
}

/// The question asked before buying.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfirmPurchase {
    pub contact: ContactId,
    pub package: PackageId,
    /// `Buy 5 stamps for Maria Alvarez for $4.75? Your balance after: $20.25.`
    pub text: String,
    pub confirm_label: String,
    pub cancel_label: String,
}

/// What the screen says after the edge answered a purchase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseResult {
    pub text: String,
    pub tone: Tone,
    /// The purchase was taken (queued or confirmed); the screen can go back.
    pub bought: bool,
}

/// The worse of the two views' freshness: offline if either is, and the
/// older cache.
fn worse(a: Freshness, b: Freshness) -> Freshness {
    match (a.uplink_up, b.uplink_up) {
        (_, true) => a,
        (true, false) => b,
        (false, false) => Freshness {
            uplink_up: false,
            cache_age_secs: match (a.cache_age_secs, b.cache_age_secs) {
                (Some(x), Some(y)) => Some(x.max(y)),
                _ => None,
            },
        },
    }
}

impl StampsVm {
    /// Builds the screen. The money shown is the shop's (the edge's money
    /// available now, net of purchases still queued).
    pub fn new(shop: &StampShop, balances: &StampBalances, selected: Option<ContactId>, lang: Lang) -> Self {
        let available_cents = shop.debit_available_cents;
        let chosen = selected.and_then(|id| balances.contacts.iter().find(|c| c.contact == id));
        let contact_name = chosen.map(|c| c.name.clone()).unwrap_or_default();
        let banner = stamps_offline_banner(&worse(shop.freshness, balances.freshness), lang);
        let name_of = |id: ContactId| {
            balances
                .contacts
                .iter()
                .find(|c| c.contact == id)
                .map(|c| c.name.clone())
                .unwrap_or_else(|| lang.pick("a contact", "un contacto").to_string())
        };
        let packages: Vec<PackageRow> = shop
            .packages
            .iter()
            .map(|p| PackageRow {
                id: p.id,
                stamps_count: p.stamps,
                stamps: stamps_word(lang, p.stamps),
                price: money(p.price_cents),
                buy_label: lang.pick("Buy", "Comprar").to_string(),
                enabled: chosen.is_some() && p.price_cents <= available_cents,
            })
            .collect();
        let purchases = balances
            .purchases
            .iter()
            .map(|p| {
                let name = name_of(p.contact);
                let stamps = stamps_word(lang, p.stamps);
                let (state, tone) = purchase_state(&p.state, lang);
                PurchaseRow {
                    contact: p.contact,
                    summary: match lang {
                        Lang::English => format!("{stamps} for {name}, {}", money(p.price_cents)),
                        Lang::Spanish => format!("{stamps} para {name}, {}", money(p.price_cents)),
                    },
                    state,
                    tone,
                }
            })
            .collect();
        StampsVm {
            title: lang.pick("Stamps", "Estampillas").to_string(),
            balance: format!(
                "{} {}",
                lang.pick("Available to spend:", "Disponible para gastar:"),
                money(available_cents)
            ),
            show_offline_banner: banner.is_some(),
            offline_banner: banner.unwrap_or_default(),
            contact: chosen.map(|c| c.contact),
            heading: match (chosen, lang) {
                (Some(c), Lang::English) => format!("Stamps for {}", c.name),
                (Some(c), Lang::Spanish) => format!("Estampillas para {}", c.name),
                (None, _) => lang.pick("Choose a contact", "Elige un contacto").to_string(),
            },
            selected_stamps: chosen
                .map(|c| {
                    let awaiting = awaiting_payment(lang, c.awaiting_payment);
                    let available = stamps_word(lang, c.available);
                    if awaiting.is_empty() {
                        available
                    } else {
                        format!("{available}, {awaiting}")
                    }
                })
                .unwrap_or_default(),
            empty_text: if packages.is_empty() {
                lang.pick("No stamp packages are on sale.", "No hay paquetes de estampillas a la venta.")
                    .to_string()
            } else {
                String::new()
            },
            packages,
            contacts: balances
                .contacts
                .iter()
                .map(|c| ContactStampsRow {
                    contact: c.contact,
                    name: c.name.clone(),
                    available: stamps_word(lang, c.available),
                    awaiting: awaiting_payment(lang, c.awaiting_payment),
                    selected: Some(c.contact) == selected,
                })
                .collect(),
            purchases,
            lang,
            available_cents,
            contact_name,
            shop: shop.packages.iter().map(|p| (p.id, p.stamps, p.price_cents)).collect(),
        }
    }

    /// The confirmation for buying `package` for the chosen contact; `None`
    /// when no contact is chosen or the package is not on this screen.
    pub fn confirm(&self, package: PackageId) -> Option<ConfirmPurchase> {
        let contact = self.contact?;
        let &(_, stamps, price) = self.shop.iter().find(|(id, _, _)| *id == package)?;
        let lang = self.lang;
        let (stamps, name) = (stamps_word(lang, stamps), &self.contact_name);
        let (price_text, after) = (money(price), money(self.available_cents.saturating_sub(price)));
        Some(ConfirmPurchase {
            contact,
            package,
            text: match lang {
                Lang::English => {
                    format!("Buy {stamps} for {name} for {price_text}? Your balance after: {after}.")
                }
                Lang::Spanish => {
                    format!("¿Comprar {stamps} para {name} por {price_text}? Tu saldo después: {after}.")
                }
            },
            confirm_label: lang.pick("Buy", "Comprar").to_string(),
            cancel_label: lang.pick("Cancel", "Cancelar").to_string(),
        })
    }
}

fn purchase_state(state: &PurchaseState, lang: Lang) -> (String, Tone) {
    match state {
        PurchaseState::Queued => {
            (lang.pick("Waiting for the connection", "Esperando la conexión").to_string(), Tone::Warning)
        }
        PurchaseState::Confirmed => (lang.pick("Confirmed", "Confirmada").to_string(), Tone::Positive),
        PurchaseState::PaymentFailed { reason } => (
            format!("{} {}", lang.pick("Payment failed.", "El pago falló."), refusal(reason, lang)),
            Tone::Alert,
        ),
    }
}

impl PurchaseResult {
    /// The edge took the purchase (`StampsBought`).
    pub fn from_purchase(purchase: &PurchaseView, contact_name: &str, lang: Lang) -> Self {
        match &purchase.state {
            PurchaseState::Queued => PurchaseResult {
                text: lang
                    .pick(
                        "Bought. Payment is confirmed when the connection returns.",
                        "Comprado. El pago se confirma cuando vuelva la conexión.",
                    )
                    .to_string(),
                tone: Tone::Positive,
                bought: true,
            },
            PurchaseState::Confirmed => PurchaseResult {
                text: match lang {
                    Lang::English => {
                        format!("Bought {} for {contact_name}.", stamps_word(lang, purchase.stamps))
                    }
                    Lang::Spanish => {
                        format!("Compraste {} para {contact_name}.", stamps_word(lang, purchase.stamps))
                    }
                },
                tone: Tone::Positive,
                bought: true,
            },
            PurchaseState::PaymentFailed { reason } => PurchaseResult {
                text: format!(
                    "{} {}",
                    lang.pick("The payment failed.", "El pago falló."),
                    refusal(reason, lang)
                ),
                tone: Tone::Alert,
                bought: false,
            },
        }
    }

    /// The edge refused the purchase (e.g. `InsufficientFunds`,
    /// `UnknownPackage`).
    pub fn from_error(err: &MessagingError, lang: Lang) -> Self {
        PurchaseResult { text: messaging_error(err, lang), tone: Tone::Alert, bought: false }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::messaging::{IdempotencyKey, RefusalReason, StampPackageRecord};
    use proto::tablet::ContactStamps;

    const ONLINE: Freshness = Freshness { uplink_up: true, cache_age_secs: Some(5) };

    fn shop(available: Cents, freshness: Freshness) -> StampShop {
        StampShop {
            packages: [(1, 1, 95), (5, 5, 475), (10, 10, 900), (40, 40, 3400)]
                .into_iter()
                .map(|(id, stamps, price_cents)| StampPackageRecord {
                    id: PackageId(id),
                    stamps,
                    price_cents,
                })
                .collect(),
            debit_available_cents: available,
            freshness,
        }
    }

    fn purchase(state: PurchaseState) -> PurchaseView {
        PurchaseView {
            key: IdempotencyKey::from_u128(1),
            contact: ContactId(7),
            stamps: 5,
            price_cents: 475,
            state,
        }
    }

    fn balances(freshness: Freshness) -> StampBalances {
        StampBalances {
            contacts: vec![
                ContactStamps {
                    contact: ContactId(7),
                    name: "Maria Alvarez".into(),
                    available: 2,
                    awaiting_payment: 1,
                },
                ContactStamps {
                    contact: ContactId(8),
                    name: "Juan Pérez".into(),
                    available: 1,
                    awaiting_payment: 0,
                },
            ],
            purchases: vec![
                purchase(PurchaseState::Queued),
                PurchaseView {
                    contact: ContactId(99),
                    ..purchase(PurchaseState::PaymentFailed { reason: RefusalReason::NoStamps })
                },
            ],
            debit_available_cents: 2500,
            freshness,
        }
    }

    #[test]
    fn packages_balance_and_contacts() {
        let vm = StampsVm::new(&shop(2500, ONLINE), &balances(ONLINE), Some(ContactId(7)), Lang::English);
        assert_eq!(vm.title, "Stamps");
        assert_eq!(vm.balance, "Available to spend: $25.00");
        assert!(!vm.show_offline_banner);
        assert_eq!(vm.offline_banner, "");
        assert_eq!(vm.heading, "Stamps for Maria Alvarez");
        assert_eq!(vm.selected_stamps, "2 stamps, 1 awaiting payment");
        let rows: Vec<_> =
            vm.packages.iter().map(|p| (p.stamps.as_str(), p.price.as_str(), p.enabled)).collect();
        assert_eq!(
            rows,
            [
                ("1 stamp", "$0.95", true),
                ("5 stamps", "$4.75", true),
                ("10 stamps", "$9.00", true),
                ("40 stamps", "$34.00", false)
            ]
        );
        assert_eq!(vm.packages[0].buy_label, "Buy");
        assert_eq!(vm.empty_text, "");
        assert_eq!(vm.contacts[0].available, "2 stamps");
        assert_eq!(vm.contacts[0].awaiting, "1 awaiting payment");
        assert!(vm.contacts[0].selected && !vm.contacts[1].selected);
        assert_eq!(vm.contacts[1].available, "1 stamp");
        assert_eq!(vm.contacts[1].awaiting, "");
        assert_eq!(vm.purchases[0].summary, "5 stamps for Maria Alvarez, $4.75");
        assert_eq!(vm.purchases[0].state, "Waiting for the connection");
        assert_eq!(vm.purchases[0].tone, Tone::Warning);
        assert_eq!(vm.purchases[1].summary, "5 stamps for a contact, $4.75");
        assert_eq!(vm.purchases[1].state, "Payment failed. There was no stamp to pay for it.");
        assert_eq!(vm.purchases[1].tone, Tone::Alert);
    }

    #[test]
    fn price_equal_to_the_money_is_buyable_and_no_contact_disables_all() {
        let vm = StampsVm::new(&shop(475, ONLINE), &balances(ONLINE), Some(ContactId(8)), Lang::English);
        let enabled: Vec<_> = vm.packages.iter().map(|p| p.enabled).collect();
        assert_eq!(enabled, [true, true, false, false]);
        assert_eq!(vm.selected_stamps, "1 stamp");

        let none = StampsVm::new(&shop(10_000, ONLINE), &balances(ONLINE), None, Lang::English);
        assert!(none.packages.iter().all(|p| !p.enabled));
        assert_eq!(none.heading, "Choose a contact");
        assert_eq!(none.selected_stamps, "");
        assert_eq!(none.confirm(PackageId(5)), None);
        let unknown =
            StampsVm::new(&shop(10_000, ONLINE), &balances(ONLINE), Some(ContactId(55)), Lang::English);
        assert_eq!(unknown.contact, None);
    }

    #[test]
    fn spanish_screen_and_plurals() {
        let vm = StampsVm::new(&shop(2500, ONLINE), &balances(ONLINE), Some(ContactId(7)), Lang::Spanish);
        assert_eq!(vm.title, "Estampillas");
        assert_eq!(vm.balance, "Disponible para gastar: $25.00");
        assert_eq!(vm.heading, "Estampillas para Maria Alvarez");
        assert_eq!(vm.selected_stamps, "2 estampillas, 1 pendiente de pago");
        assert_eq!(vm.packages[0].stamps, "1 estampilla");
        assert_eq!(vm.packages[1].stamps, "5 estampillas");
        assert_eq!(vm.packages[0].buy_label, "Comprar");
        assert_eq!(vm.purchases[0].summary, "5 estampillas para Maria Alvarez, $4.75");
        assert_eq!(vm.purchases[0].state, "Esperando la conexión");
        assert_eq!(awaiting_payment(Lang::Spanish, 3), "3 pendientes de pago");
        assert_eq!(awaiting_payment(Lang::English, 3), "3 awaiting payment");
    }

    #[test]
    fn confirmation_names_contact_price_and_balance_after() {
        let vm = StampsVm::new(&shop(2500, ONLINE), &balances(ONLINE), Some(ContactId(7)), Lang::English);
        let confirm = vm.confirm(PackageId(5)).unwrap();
        assert_eq!(confirm.contact, ContactId(7));
        assert_eq!(confirm.package, PackageId(5));
        assert_eq!(confirm.text, "Buy 5 stamps for Maria Alvarez for $4.75? Your balance after: $20.25.");
        assert_eq!(confirm.confirm_label, "Buy");
        assert_eq!(confirm.cancel_label, "Cancel");
        assert_eq!(vm.confirm(PackageId(77)), None);
        let vm = StampsVm::new(&shop(2500, ONLINE), &balances(ONLINE), Some(ContactId(7)), Lang::Spanish);
        assert_eq!(
            vm.confirm(PackageId(1)).unwrap().text,
            "¿Comprar 1 estampilla para Maria Alvarez por $0.95? Tu saldo después: $24.05."
        );
    }

    #[test]
    fn every_purchase_result_in_words() {
        let queued =
            PurchaseResult::from_purchase(&purchase(PurchaseState::Queued), "Maria Alvarez", Lang::English);
        assert_eq!(queued.text, "Bought. Payment is confirmed when the connection returns.");
        assert!(queued.bought);
        assert_eq!(
            PurchaseResult::from_purchase(&purchase(PurchaseState::Queued), "Maria Alvarez", Lang::Spanish)
                .text,
            "Comprado. El pago se confirma cuando vuelva la conexión."
        );
        let confirmed = PurchaseResult::from_purchase(
            &purchase(PurchaseState::Confirmed),
            "Maria Alvarez",
            Lang::English,
        );
        assert_eq!(confirmed.text, "Bought 5 stamps for Maria Alvarez.");
        assert_eq!(confirmed.tone, Tone::Positive);
        assert_eq!(
            PurchaseResult::from_purchase(
                &purchase(PurchaseState::Confirmed),
                "Maria Alvarez",
                Lang::Spanish
            )
            .text,
            "Compraste 5 estampillas para Maria Alvarez."
        );
        let failed = PurchaseResult::from_purchase(
            &purchase(PurchaseState::PaymentFailed {
                reason: RefusalReason::InsufficientFunds { balance_cents: 300, price_cents: 475 },
            }),
            "Maria Alvarez",
            Lang::English,
        );
        assert_eq!(
            failed.text,
            "The payment failed. Not enough money in your account: the balance was $3.00 and the price is $4.75."
        );
        assert_eq!(failed.tone, Tone::Alert);
        assert!(!failed.bought);
        let unavailable = PurchaseResult::from_purchase(
            &purchase(PurchaseState::PaymentFailed {
                reason: RefusalReason::PackageUnavailable { package: PackageId(5) },
            }),
            "Maria Alvarez",
            Lang::Spanish,
        );
        assert_eq!(
            unavailable.text,
            "El pago falló. Ese paquete de estampillas ya no se vende a ese precio."
        );
    }

    #[test]
    fn edge_errors_in_words() {
        let funds = PurchaseResult::from_error(
            &MessagingError::InsufficientFunds { available_cents: 300, price_cents: 475 },
            Lang::English,
        );
        assert_eq!(funds.text, "Not enough money: you have $3.00 available and the price is $4.75.");
        assert_eq!(funds.tone, Tone::Alert);
        assert!(!funds.bought);
        assert_eq!(
            PurchaseResult::from_error(&MessagingError::UnknownPackage(PackageId(5)), Lang::English).text,
            "That stamp package is no longer on sale. Choose another one."
        );
        assert_eq!(
            PurchaseResult::from_error(&MessagingError::UnknownPackage(PackageId(5)), Lang::Spanish).text,
            "Ese paquete de estampillas ya no está a la venta. Elige otro."
        );
    }

    #[test]
    fn offline_banner_when_either_view_is_offline() {
        let down = Freshness { uplink_up: false, cache_age_secs: Some(600) };
        let vm = StampsVm::new(&shop(2500, ONLINE), &balances(down), Some(ContactId(7)), Lang::English);
        assert!(vm.show_offline_banner);
        assert_eq!(
            vm.offline_banner,
            "Offline. Balances are from 10 minutes ago; purchases are confirmed when the connection returns."
        );
        let older = Freshness { uplink_up: false, cache_age_secs: Some(7200) };
        let vm = StampsVm::new(&shop(2500, older), &balances(down), Some(ContactId(7)), Lang::Spanish);
        assert_eq!(
            vm.offline_banner,
            "Sin conexión. Los saldos son de hace 2 horas; las compras se confirman cuando vuelva la conexión."
        );
    }

    #[test]
    fn empty_shop_says_so() {
        let mut empty = shop(2500, ONLINE);
        empty.packages.clear();
        let vm = StampsVm::new(&empty, &balances(ONLINE), Some(ContactId(7)), Lang::English);
        assert_eq!(vm.empty_text, "No stamp packages are on sale.");
        let vm = StampsVm::new(&empty, &balances(ONLINE), Some(ContactId(7)), Lang::Spanish);
        assert_eq!(vm.empty_text, "No hay paquetes de estampillas a la venta.");
    }
}
