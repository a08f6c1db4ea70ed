/** Injection tokens of the security services. */
export const API_KEY_STORE = Symbol('ApiKeyStore');
export const BOOTSTRAP_KEYS = Symbol('BootstrapKeys');
export const TENANT_SETTINGS = Symbol('TenantSettingsStore');
export const AUTHENTICATOR = Symbol('Authenticator');
export const WINDOW_LIMITER = Symbol('WindowLimiter');
export const JOB_QUOTA = Symbol('JobQuota');
export const AUDIT_LOG = Symbol('AuditLog');
export const TOKEN_COUNTER = Symbol('TokenCounter');
