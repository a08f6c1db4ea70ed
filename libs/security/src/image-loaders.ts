import sharp from 'sharp';

/**
 * The only libvips loaders this product needs: JPEG, PNG, WebP and GIF from
 * memory. libvips can load dozens more (SVG through librsvg, TIFF, HEIF,
 * JPEG 2000, FITS, Matlab, …); each is parser attack surface that a crafted
 * file could reach if a check upstream ever let it through, so every other
 * loader is blocked for the whole process. Call once at start-up.
 */
export const ALLOWED_LOADERS = ['VipsForeignLoadJpegBuffer', 'VipsForeignLoadPngBuffer', 'VipsForeignLoadWebpBuffer', 'VipsForeignLoadNsgifBuffer'] as const;

export function restrictImageLoaders(): void {
  sharp.block({ operation: ['VipsForeignLoad'] });
  sharp.unblock({ operation: [...ALLOWED_LOADERS] });
}
