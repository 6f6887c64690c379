/* Generated from specs/trip-status.schema.json by scripts/generate.mjs (json-schema-to-typescript): do not edit. */

/**
 * What each message's JSON says, told apart by `type` (`specs/trip-status.schema.json`).
 */
export type TripStatusMessage =
  | {
      currentStatus: TripStatus;
      seq: number;
      timestamp: string;
      tripId: string;
      type: "connected";
    }
  | {
      destName: string;
      driverId?: string | null;
      driverName?: string | null;
      eventId: string;
      newStatus: TripStatus;
      notes?: string | null;
      originName: string;
      previousStatus: TripStatus;
      seq: number;
      tripId: string;
      tripTitle: string;
      type: "status_update";
      updatedAt: string;
      updatedBy: string;
    }
  | {
      timestamp: string;
      type: "heartbeat";
    }
  | {
      reason: string;
      timestamp: string;
      type: "resync";
    };
/**
 * A trip's lifecycle (API.md "Trip statuses").
 */
export type TripStatus =
  "DRAFT" | "PUBLISHED" | "IN_PROGRESS" | "DEPARTED" | "ARRIVED" | "COMPLETED" | "CANCELLED";
