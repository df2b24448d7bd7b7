//! Headless pictures of the window with Slint's software renderer and the
//! embedded font: golden screenshots in tests and the scripted demo's
//! screenshots. Nothing here needs a display.

use std::path::Path;
use std::rc::Rc;

use slint::platform::software_renderer::{MinimalSoftwareWindow, RepaintBufferType};
use slint::platform::{Platform, WindowAdapter};
use slint::{PhysicalSize, Rgb8Pixel};

/// A Slint platform whose only window renders into memory.
struct Headless {
    window: Rc<MinimalSoftwareWindow>,
}

impl Platform for Headless {
    fn create_window_adapter(&self) -> Result<Rc<dyn WindowAdapter>, slint::PlatformError> {
        Ok(self.window.clone())
    }
}

/// Installs the headless platform for this process (once; Slint allows one
/// platform per process) and returns its window.
pub fn install(width: u32, height: u32) -> Result<Rc<MinimalSoftwareWindow>, slint::PlatformError> {
    let window = MinimalSoftwareWindow::new(RepaintBufferType::NewBuffer);
    window.set_size(PhysicalSize::new(width, height));
    slint::platform::set_platform(Box::new(Headless { window: window.clone() }))
        .map_err(|e| slint::PlatformError::Other(e.to_string()))?;
    Ok(window)
}

/// An RGB picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picture {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// Renders the whole window as it is now.
pub fn capture(window: &MinimalSoftwareWindow) -> Picture {
    let size = window.size();
    let (width, height) = (size.width, size.height);
    let mut pixels = vec![Rgb8Pixel { r: 0, g: 0, b: 0 }; (width as usize) * (height as usize)];
    window.request_redraw();
    // Timers and animations settle before the picture is taken.
    slint::platform::update_timers_and_animations();
    window.draw_if_needed(|renderer| {
        renderer.render(&mut pixels, width as usize);
    });
    let rgb = pixels.iter().flat_map(|p| [p.r, p.g, p.b]).collect();
    Picture { width, height, rgb }
}

#[derive(Debug, thiserror::Error)]
pub enum PictureError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("{path} is not a PNG this shell wrote: {detail}")]
    Decode { path: String, detail: String },
    #[error("encoding PNG: {0}")]
    Encode(String),
}

impl Picture {
    pub fn save_png(&self, path: &Path) -> Result<(), PictureError> {
        let file = std::fs::File::create(path)
            .map_err(|source| PictureError::Write { path: path.display().to_string(), source })?;
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(|e| PictureError::Encode(e.to_string()))?;
        writer.write_image_data(&self.rgb).map_err(|e| PictureError::Encode(e.to_string()))?;
        writer.finish().map_err(|e| PictureError::Encode(e.to_string()))
    }

    pub fn load_png(path: &Path) -> Result<Picture, PictureError> {
        let name = path.display().to_string();
        let file =
            std::fs::File::open(path).map_err(|source| PictureError::Read { path: name.clone(), source })?;
        let decoder = png::Decoder::new(std::io::BufReader::new(file));
        let mut reader = decoder
            .read_info()
            .map_err(|e| PictureError::Decode { path: name.clone(), detail: e.to_string() })?;
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader
            .next_frame(&mut buf)
            .map_err(|e| PictureError::Decode { path: name.clone(), detail: e.to_string() })?;
        if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
            return Err(PictureError::Decode {
                path: name,
                detail: format!("{:?} {:?}", info.color_type, info.bit_depth),
            });
        }
        buf.truncate(info.buffer_size());
        Ok(Picture { width: info.width, height: info.height, rgb: buf })
    }

    /// The share of pixels whose colour differs by more than `threshold` in
    /// any channel; 1.0 when the sizes differ.
    pub fn difference(&self, other: &Picture, threshold: u8) -> f64 {
        if (self.width, self.height) != (other.width, other.height) {
            return 1.0;
        }
        let pixels = self.rgb.len() / 3;
        if pixels == 0 {
            return 0.0;
        }
        let differing = self
            .rgb
            .chunks_exact(3)
            .zip(other.rgb.chunks_exact(3))
            .filter(|(a, b)| a.iter().zip(b.iter()).any(|(x, y)| x.abs_diff(*y) > threshold))
            .count();
        differing as f64 / pixels as f64
    }
}
