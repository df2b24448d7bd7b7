//! The settings screen: language and large text.
//!
//! [`Settings`] is the state the shell keeps (and may save); [`SettingsVm`] is
//! what the screen shows for it.

use super::common::Lang;

/// Text scale with large text off.
pub const NORMAL_TEXT_SCALE: f32 = 1.0;
/// Text scale with large text on; large enough to matter for low vision
/// while the layouts still fit a 10-inch tablet.
pub const LARGE_TEXT_SCALE: f32 = 1.4;

/// The resident's display preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Settings {
    /// The language every screen speaks.
    pub lang: Lang,
    /// Larger fonts everywhere.
    pub large_text: bool,
}

impl Settings {
    /// How much to scale every font size.
    pub fn text_scale(self) -> f32 {
        if self.large_text {
            LARGE_TEXT_SCALE
        } else {
            NORMAL_TEXT_SCALE
        }
    }

    /// Flips large text on or off.
    pub fn toggle_large_text(&mut self) {
        self.large_text = !self.large_text;
    }
}

/// One choice in the language picker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LangOption {
    /// The language this option picks.
    pub lang: Lang,
    /// `en`, `es`
    pub code: String,
    /// The language's own name, so anyone can find theirs whatever the
    /// current language is.
    pub name: String,
    /// The language in use now.
    pub selected: bool,
}

/// The settings screen, display-ready (labels in the current language).
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsVm {
    /// `Settings`
    pub title: String,
    /// `Language`
    pub language_label: String,
    /// Every shipped language, the current one selected.
    pub languages: Vec<LangOption>,
    /// `Large text`
    pub large_text_label: String,
    /// `Make text bigger on every screen`
    pub large_text_hint: String,
    /// Large text is on.
    pub large_text_on: bool,
    /// `On` / `Off`, so the switch's state is not shown by its colour alone.
    pub large_text_state: String,
    /// How much to scale every font size (1.0 or 1.4).
    pub text_scale: f32,
}

impl SettingsVm {
    /// The screen for `settings`, in the language they select.
    pub fn new(settings: Settings) -> Self {
        let lang = settings.lang;
        SettingsVm {
            title: lang.pick("Settings", "Ajustes").into(),
            language_label: lang.pick("Language", "Idioma").into(),
            languages: Lang::ALL
                .into_iter()
                .map(|l| LangOption {
                    lang: l,
                    code: l.code().into(),
                    name: l.native_name().into(),
                    selected: l == lang,
                })
                .collect(),
            large_text_label: lang.pick("Large text", "Texto grande").into(),
            large_text_hint: lang
                .pick("Make text bigger on every screen", "Agrandar el texto en todas las pantallas")
                .into(),
            large_text_on: settings.large_text,
            large_text_state: if settings.large_text {
                lang.pick("On", "Activado")
            } else {
                lang.pick("Off", "Desactivado")
            }
            .into(),
            text_scale: settings.text_scale(),
        }
    }

    /// How much to scale every font size.
    pub fn text_scale(&self) -> f32 {
        self.text_scale
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_defaults() {
        let vm = SettingsVm::new(Settings::default());
        assert_eq!(vm.title, "Settings");
        assert_eq!(vm.language_label, "Language");
        assert_eq!(vm.large_text_label, "Large text");
        assert_eq!(vm.large_text_state, "Off");
        assert!(!vm.large_text_on);
        assert_eq!(vm.text_scale(), NORMAL_TEXT_SCALE);
        let selected: Vec<_> = vm.languages.iter().filter(|o| o.selected).map(|o| o.code.as_str()).collect();
        assert_eq!(selected, ["en"]);
    }

    #[test]
    fn spanish_large_text() {
        let mut settings = Settings { lang: Lang::Spanish, large_text: false };
        settings.toggle_large_text();
        let vm = SettingsVm::new(settings);
        assert_eq!(vm.title, "Ajustes");
        assert_eq!(vm.language_label, "Idioma");
        assert_eq!(vm.large_text_label, "Texto grande");
        assert_eq!(vm.large_text_state, "Activado");
        assert!(vm.large_text_on);
        assert_eq!(vm.text_scale(), LARGE_TEXT_SCALE);
        // Language names stay in their own language.
        let names: Vec<_> = vm.languages.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["English", "Español"]);
        assert!(vm.languages[1].selected);
    }
}
