/** Injection tokens of the webhooks feature (explicit: the build emits no decorator metadata). */
/** `WebhookEvents`: what code that announces events calls (`emit`). */
export const WEBHOOK_EVENTS = Symbol('WebhookEvents');
export const WEBHOOK_ENDPOINTS = Symbol('WebhookEndpointStore');
export const WEBHOOK_DELIVERY_LOG = Symbol('WebhookDeliveryLog');
export const WEBHOOK_QUEUE = Symbol('WebhookQueue');
export const WEBHOOK_DELIVERY = Symbol('WebhookDelivery');
/** The address policy of webhook URLs: `(ip) => boolean`. */
export const WEBHOOK_ADDRESS_POLICY = Symbol('WebhookAddressPolicy');
/** The delivery worker's own connection, which waits for Redis instead of failing fast. */
export const WEBHOOK_REDIS = Symbol('WebhookRedis');
