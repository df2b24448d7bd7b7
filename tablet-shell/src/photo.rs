//! Photo attachments (PNG, JPEG) decoded to RGBA pictures for the viewer.
//!
//! The bytes come from a contact through central and the edge, so nothing
//! about them is trusted: the file size and the pixel dimensions are checked
//! before any pixel is decoded (a small file can claim a huge picture), and
//! every failure is a [`PhotoError`], never a panic. Pure computation, no
//! Slint types: the kiosk decodes, the UI shell only wraps the pixels.

use std::io::Cursor;
use std::sync::Arc;

use image::{ImageFormat, ImageReader, Limits};
use proto::messaging::MediaType;

/// Larger files are refused before decoding. Phone photos re-encoded by
/// central are far below this; a bigger file is not a photo we should hold.
pub const MAX_PHOTO_BYTES: usize = 16 * 1024 * 1024;
/// Wider or taller pictures are refused from their header alone.
pub const MAX_PHOTO_SIDE: u32 = 4096;
/// The box a decoded photo is scaled down to fit: the attachment viewer's
/// size, so a large photo costs the UI no more memory than a small one.
pub const VIEWER_WIDTH: u32 = 480;
pub const VIEWER_HEIGHT: u32 = 270;

/// Why a photo cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhotoError {
    #[error("{0:?} is not a photo type")]
    NotAPhoto(MediaType),
    #[error("the file is {len} bytes, more than the {max} allowed")]
    FileTooLarge { len: usize, max: usize },
    #[error("the picture is {width}x{height}, larger than {max}x{max}")]
    TooLarge { width: u32, height: u32, max: u32 },
    #[error("the picture could not be decoded: {0}")]
    Corrupt(String),
}

/// A decoded photo: tightly packed RGBA rows, at most the viewer's size.
#[derive(Clone, PartialEq, Eq)]
pub struct Photo {
    pub width: u32,
    pub height: u32,
    /// Shared so the UI shell can tell an unchanged photo from a new one
    /// without comparing pixels.
    pub rgba: Arc<[u8]>,
}

impl std::fmt::Debug for Photo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Photo").field("width", &self.width).field("height", &self.height).finish()
    }
}

/// A reader for the header only: its size is judged here, in our terms.
fn header_reader(bytes: &[u8], format: ImageFormat) -> ImageReader<Cursor<&[u8]>> {
    ImageReader::with_format(Cursor::new(bytes), format)
}

fn reader(bytes: &[u8], format: ImageFormat) -> ImageReader<Cursor<&[u8]>> {
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_PHOTO_SIDE);
    limits.max_image_height = Some(MAX_PHOTO_SIDE);
    // The largest picture allowed, as 16-bit RGBA, plus room for the decoder.
    limits.max_alloc = Some(u64::from(MAX_PHOTO_SIDE) * u64::from(MAX_PHOTO_SIDE) * 8 + (16 << 20));
    reader.limits(limits);
    reader
}

/// Decodes `bytes` of `content_type` and scales the picture down (never up)
/// to fit `max_width` x `max_height`, keeping its aspect ratio.
pub fn decode(
    content_type: MediaType,
    bytes: &[u8],
    max_width: u32,
    max_height: u32,
) -> Result<Photo, PhotoError> {
    let format = match content_type {
        MediaType::Png => ImageFormat::Png,
        MediaType::Jpeg => ImageFormat::Jpeg,
        other => return Err(PhotoError::NotAPhoto(other)),
    };
    if bytes.len() > MAX_PHOTO_BYTES {
        return Err(PhotoError::FileTooLarge { len: bytes.len(), max: MAX_PHOTO_BYTES });
    }
    let corrupt = |e: image::ImageError| PhotoError::Corrupt(e.to_string());
    let (width, height) = header_reader(bytes, format).into_dimensions().map_err(corrupt)?;
    if width > MAX_PHOTO_SIDE || height > MAX_PHOTO_SIDE {
        return Err(PhotoError::TooLarge { width, height, max: MAX_PHOTO_SIDE });
    }
    if width == 0 || height == 0 {
        return Err(PhotoError::Corrupt(format!("the picture is {width}x{height}")));
    }
    // The JPEG decoder fills a cut-off picture with grey rather than failing;
    // a photo with its bottom missing is a damaged file, not one to show.
    if format == ImageFormat::Jpeg && !jpeg_is_whole(bytes) {
        return Err(PhotoError::Corrupt("the JPEG ends before its last scan does".into()));
    }
    let mut rgba = reader(bytes, format).decode().map_err(corrupt)?.into_rgba8();
    let (fit_w, fit_h) = fit(width, height, max_width.max(1), max_height.max(1));
    if (fit_w, fit_h) != (width, height) {
        rgba = image::imageops::resize(&rgba, fit_w, fit_h, image::imageops::FilterType::Triangle);
    }
    Ok(Photo { width: rgba.width(), height: rgba.height(), rgba: Arc::from(rgba.into_raw()) })
}

/// Whether the JPEG's end-of-image marker follows its last scan. Inside a
/// scan's entropy-coded data 0xFF is always followed by 0x00 or a restart
/// marker, so the last start-of-scan and a later end-of-image are real
/// markers (an embedded thumbnail's end marker comes before them).
fn jpeg_is_whole(bytes: &[u8]) -> bool {
    const SOS: [u8; 2] = [0xFF, 0xDA];
    const EOI: [u8; 2] = [0xFF, 0xD9];
    bytes.windows(2).rposition(|w| w == SOS).is_some_and(|sos| bytes[sos..].windows(2).any(|w| w == EOI))
}

/// The largest size with `width:height`'s aspect that fits the box, never
/// larger than the picture itself and never zero.
fn fit(width: u32, height: u32, max_width: u32, max_height: u32) -> (u32, u32) {
    if width <= max_width && height <= max_height {
        return (width, height);
    }
    let (w, h, mw, mh) = (u64::from(width), u64::from(height), u64::from(max_width), u64::from(max_height));
    // Scale by whichever side is the tighter fit; integer maths, rounded down.
    let (fw, fh) = if w * mh >= h * mw { (mw, h * mw / w) } else { (w * mh / h, mh) };
    (u32::try_from(fw).unwrap_or(max_width).max(1), u32::try_from(fh).unwrap_or(max_height).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = include_bytes!("../../central-sim/fixtures/media/photo.png");
    const JPEG: &[u8] = include_bytes!("../../central-sim/fixtures/media/snap.jpg");

    fn encoded(width: u32, height: u32, format: ImageFormat) -> Vec<u8> {
        let picture = image::RgbaImage::from_pixel(width, height, image::Rgba([200, 30, 30, 255]));
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgba8(picture).to_rgb8().write_to(&mut out, format).expect("encodes");
        out.into_inner()
    }

    #[test]
    fn the_fixture_png_and_jpeg_decode_to_rgba() {
        for (kind, bytes) in [(MediaType::Png, PNG), (MediaType::Jpeg, JPEG)] {
            let photo = decode(kind, bytes, VIEWER_WIDTH, VIEWER_HEIGHT).expect("decodes");
            assert_eq!((photo.width, photo.height), (160, 120), "{kind:?} is small enough to keep its size");
            assert_eq!(photo.rgba.len(), 160 * 120 * 4);
            assert!(photo.rgba.chunks(4).any(|p| p[..3] != [0, 0, 0]), "{kind:?} is not all black");
        }
    }

    #[test]
    fn a_photo_is_scaled_down_to_the_viewer_keeping_its_shape() {
        let photo = decode(MediaType::Png, PNG, 80, 80).expect("decodes");
        assert_eq!((photo.width, photo.height), (80, 60));
        let big = encoded(2000, 1000, ImageFormat::Png);
        let photo = decode(MediaType::Png, &big, VIEWER_WIDTH, VIEWER_HEIGHT).expect("decodes");
        assert_eq!((photo.width, photo.height), (480, 240));
        assert_eq!(photo.rgba.len(), 480 * 240 * 4);
        assert_eq!(fit(1, 4000, 640, 360), (1, 360));
        assert_eq!(fit(4000, 1, 640, 360), (640, 1));
    }

    #[test]
    fn truncated_and_garbage_bytes_are_typed_errors() {
        for (kind, bytes) in [(MediaType::Png, PNG), (MediaType::Jpeg, JPEG)] {
            for cut in [0, 8, 40, bytes.len() / 2] {
                let result = decode(kind, &bytes[..cut], VIEWER_WIDTH, VIEWER_HEIGHT);
                assert!(matches!(result, Err(PhotoError::Corrupt(_))), "{kind:?} cut at {cut}: {result:?}");
            }
        }
        assert!(matches!(decode(MediaType::Jpeg, PNG, 640, 360), Err(PhotoError::Corrupt(_))));
        // Cut inside the scan, or just its end marker missing.
        for cut in [JPEG.len() - 200, JPEG.len() - 2] {
            let result = decode(MediaType::Jpeg, &JPEG[..cut], 640, 360);
            assert!(matches!(result, Err(PhotoError::Corrupt(_))), "cut at {cut}: {result:?}");
        }
        // Bytes after the end marker do not make a whole photo damaged.
        let mut padded = JPEG.to_vec();
        padded.extend_from_slice(&[0; 16]);
        assert!(decode(MediaType::Jpeg, &padded, 640, 360).is_ok());
        assert_eq!(decode(MediaType::WebmVp8, PNG, 640, 360), Err(PhotoError::NotAPhoto(MediaType::WebmVp8)));
    }

    #[test]
    fn oversize_pictures_and_files_are_refused_before_decoding() {
        let wide = encoded(MAX_PHOTO_SIDE + 1, 1, ImageFormat::Png);
        assert_eq!(
            decode(MediaType::Png, &wide, 640, 360),
            Err(PhotoError::TooLarge { width: MAX_PHOTO_SIDE + 1, height: 1, max: MAX_PHOTO_SIDE })
        );
        let tall = encoded(1, MAX_PHOTO_SIDE + 1, ImageFormat::Jpeg);
        assert!(matches!(decode(MediaType::Jpeg, &tall, 640, 360), Err(PhotoError::TooLarge { .. })));
        let mut huge = PNG.to_vec();
        huge.resize(MAX_PHOTO_BYTES + 1, 0);
        assert_eq!(
            decode(MediaType::Png, &huge, 640, 360),
            Err(PhotoError::FileTooLarge { len: MAX_PHOTO_BYTES + 1, max: MAX_PHOTO_BYTES })
        );
    }
}
