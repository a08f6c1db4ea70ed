import { Inject, Injectable } from '@nestjs/common';
import type { BlockList } from 'node:net';
import { AppError } from '@fastvlm/contracts';
import { ImageChecker, fetchImageUrl, inList, isPublicAddress, parseCidrList, type ImageLimits, type Principal, type Resolver } from '@fastvlm/security';
import { CONFIG, type GatewayConfig } from '../config';

/** Replaces DNS for image URLs (tests answer private addresses with it). */
export const IMAGE_URL_RESOLVER = Symbol('ImageUrlResolver');

/**
 * Images into the gateway: inline bytes are checked as they are; http(s)
 * URLs are fetched only for tenants whose settings enable it, through the
 * SSRF-guarded fetcher, and then checked the same way.
 */
@Injectable()
export class ImageIntake {
  private readonly limits: ImageLimits;
  private readonly checker: ImageChecker;
  private readonly extraAllowed: BlockList | null;

  constructor(
    @Inject(CONFIG) private readonly cfg: GatewayConfig,
    @Inject(IMAGE_URL_RESOLVER) private readonly resolver: Resolver | null,
  ) {
    this.limits = { maxBytes: cfg.MAX_IMAGE_BYTES, maxPixels: cfg.MAX_IMAGE_PIXELS, maxDimension: cfg.MAX_IMAGE_SIDE, maxFrames: cfg.MAX_IMAGE_FRAMES };
    this.checker = new ImageChecker(this.limits);
    const extra = cfg.IMAGE_URL_ALLOW_CIDRS.split(',').map((s) => s.trim()).filter(Boolean);
    this.extraAllowed = extra.length > 0 ? parseCidrList(extra, 'IMAGE_URL_ALLOW_CIDRS') : null;
  }

  async check(bytes: Uint8Array, param: string): Promise<void> {
    await this.checker.check(bytes, param);
  }

  /** Throws unless the caller's tenant may send image URLs (checked before admission, so a refusal costs nothing). */
  assertUrlAllowed(p: Principal): void {
    if (!p.settings.imageUrls) {
      throw new AppError('image_url_not_enabled', 'Fetching images from http(s) URLs is not enabled for your organisation; send the image as a base64 data: URL.', 'image_url');
    }
  }

  async fetch(url: string, param: string): Promise<Buffer> {
    const extra = this.extraAllowed;
    const bytes = await fetchImageUrl(url, {
      maxBytes: this.limits.maxBytes,
      timeoutMs: this.cfg.IMAGE_URL_TIMEOUT_MS,
      maxRedirects: this.cfg.IMAGE_URL_MAX_REDIRECTS,
      isAllowedAddress: extra ? (ip) => isPublicAddress(ip) || inList(extra, ip) : isPublicAddress,
      ...(this.resolver ? { resolve: this.resolver } : {}),
    });
    await this.check(bytes, param);
    return bytes;
  }
}
