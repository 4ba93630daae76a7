// The phone API's shapes (dispatch/entrypoints/phone_api.py, field_api.py).
export type TaskSummary = {
  task_id: string;
  route: string;
  priority: string;
  state: string;
  enterprise_id: string;
  enterprise_name?: string;
  outlet_id: string;
  county: string;
  created_at: string;
  case_id: string;
  my_slot: string | null;
};

export type Coordinates = { lat: number; lon: number };

export type TaskDetail = TaskSummary & {
  alert_ids: string[];
  alert_time: string;
  enterprise: { id: string; name: string; address: string };
  outlet: { id: string; name: string; address: string };
  evidence: Record<string, unknown>;
  coordinates: Coordinates | null;
  team: { person_id: string; name: string; role: string; slot_id: string; status: string }[];
  presence: { person_id: string; name: string; role: string; checked_in_at: string; distance_m: number }[];
  history: { seq: number; to_state: string; actor: string; at: string; note: string }[];
  sla: { clock: string; started_at: string; due_at: string; stopped_at: string | null; breached: boolean }[];
  geofence_m: number;
};

export type SiteHistory = {
  tasks: { task_id: string; state: string; priority: string; created_at: string; kinds: string[]; factors: string[] }[];
  cases: { case_id: string; state: string; opened_at: string; summary: string }[];
};

export type Me = {
  person_id: string;
  name: string;
  role: string;
  jurisdiction: string[];
  photo_max_bytes: number;
};
