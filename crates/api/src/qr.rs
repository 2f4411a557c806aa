//! QR codes of provisioning URIs, as PNG for apps and pages, and as text for terminals.

use qrcode::{Color, EcLevel, QrCode};

/// Pixels per QR module, and the quiet zone around the code (in modules) scanners need.
const SCALE: usize = 6;
const QUIET: usize = 4;

/// A grayscale PNG of `data` as a QR code; `None` if it does not fit in one.
pub fn png(data: &str) -> Option<Vec<u8>> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    let modules = code.width();
    let colors = code.to_colors();
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
        for y in my * SCALE..(my + 1) * SCALE {
            let row = y * side;
            if let Some(run) = pixels.get_mut(row + mx * SCALE..row + (mx + 1) * SCALE) {
                run.fill(0);
            }
        }
    }
    let mut out = Vec::new();
    let side32 = u32::try_from(side).ok()?;
    let mut encoder = png::Encoder::new(&mut out, side32, side32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().ok()?;
    writer.write_image_data(&pixels).ok()?;
    writer.finish().ok()?;
    Some(out)
}

/// `data` as a QR code drawn with Unicode half blocks, for a terminal.
pub fn text(data: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}
