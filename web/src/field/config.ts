// Per-person settings from GET /v1/me (the photo cap is the server's to configure).
import type { Me } from "./types";

export const config: { me: Me | null } = { me: null };

export const DEFAULT_PHOTO_MAX = 20 * 1024 * 1024;
export const SCALED_EDGE_PX = 2000;
