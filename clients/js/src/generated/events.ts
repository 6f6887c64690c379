/* Generated from specs/events.schema.json by scripts/generate.mjs (json-schema-to-typescript): do not edit. */

/**
 * The typed payloads of the catalogue; `Envelope::new` turns one into an envelope.
 */
export type DomainEvent =
  | {
      data: ChatCreated;
      type: "chat.created";
    }
  | {
      data: Participant;
      type: "chat.participant.joined";
    }
  | {
      data: MessageStored;
      type: "chat.message.stored";
    }
  | {
      data: TurnChanged;
      type: "chat.turn.changed";
    }
  | {
      data: MessageRejected;
      type: "chat.message.rejected";
    }
  | {
      data: Typing;
      type: "chat.typing.user";
    }
  | {
      data: Typing;
      type: "chat.typing.assistant";
    }
  | {
      data: CompletionUpdated;
      type: "chat.completion.updated";
    }
  | {
      data: CompletionReady;
      type: "chat.completion.ready";
    }
  | {
      data: SettingsUpdated;
      type: "chat.settings.updated";
    }
  | {
      data: AiRequested;
      type: "chat.ai.requested";
    }
  | {
      data: AiStarted;
      type: "chat.ai.started";
    }
  | {
      data: AiCompleted;
      type: "chat.ai.completed";
    }
  | {
      data: AiFailed;
      type: "chat.ai.failed";
    }
  | {
      data: TripCreated;
      type: "trip.created";
    }
  | {
      data: TripStatusUpdated;
      type: "trip.status.updated";
    }
  | {
      data: TripOfferCreated;
      type: "trip.offer.created";
    }
  | {
      data: BookingConfirmed;
      type: "booking.confirmed";
    }
  | {
      data: BookingCancelled;
      type: "booking.cancelled";
    }
  | {
      data: ConnectionChanged;
      type: "connection.opened";
    }
  | {
      data: ConnectionChanged;
      type: "connection.closed";
    }
  | {
      data: PresenceChanged;
      type: "presence.joined";
    }
  | {
      data: PresenceChanged;
      type: "presence.left";
    }
  | {
      data: ChannelLifecycle;
      type: "channel.occupied";
    }
  | {
      data: ChannelLifecycle;
      type: "channel.vacated";
    };
/**
 * A trip's lifecycle (API.md "Trip statuses").
 */
export type TripStatus =
  "DRAFT" | "PUBLISHED" | "IN_PROGRESS" | "DEPARTED" | "ARRIVED" | "COMPLETED" | "CANCELLED";
export type TripType = "PRIVATE" | "SHARED";

export interface ChatCreated {
  chatId: string;
  createdBy: string;
  settings: ChatSettings;
  title: string;
}
export interface ChatSettings {
  assistantEnabled?: boolean;
  /**
   * Terms the moderation extension refuses (case-insensitive, whole words).
   */
  blocklist?: string[];
  /**
   * The extensions enabled for this chat: `analytics`, `moderation`.
   */
  extensions?: string[];
  turnMode?: "free" | "round_robin" | "user_then_assistant";
}
/**
 * A member of a chat, as `chat.participant.joined` announces them and the chat lists them.
 */
export interface Participant {
  chatId: string;
  displayName: string;
  joinedAt: string;
  role: string;
  userId: string;
}
export interface MessageStored {
  chatId: string;
  clientMessageId?: string | null;
  content: string;
  createdAt: string;
  id: string;
  senderId: string;
  senderRole: string;
}
export interface TurnChanged {
  chatId: string;
  nextRole?: string | null;
  nextUserId?: string | null;
  timestamp: string;
}
/**
 * `chat.message.rejected`: moderation refused a message; nothing was stored. Sent to the
 * sender's `user:{id}` channel only (the room never sees refused content).
 */
export interface MessageRejected {
  chatId: string;
  clientMessageId?: string | null;
  /**
   * Why, for a machine: `blocked_term`.
   */
  code: string;
  /**
   * Why, for a person.
   */
  reason: string;
  rejectedAt: string;
  senderId: string;
}
/**
 * `chat.typing.user` and `chat.typing.assistant` (priority `low`): an indicator went on
 * (until `expiresAt`, unless refreshed) or off.
 */
export interface Typing {
  chatId: string;
  displayName: string;
  expiresAt?: string | null;
  isTyping: boolean;
  userId: string;
}
/**
 * `chat.completion.updated`: one participant completed.
 */
export interface CompletionUpdated {
  chatId: string;
  completed: boolean;
  completedAt: string;
  completedCount: number;
  participantCount: number;
  userId: string;
}
/**
 * `chat.completion.ready`: every participant has completed (announced once per chat).
 */
export interface CompletionReady {
  chatId: string;
  participantCount: number;
  participants: string[];
  readyAt: string;
}
/**
 * `chat.settings.updated`.
 */
export interface SettingsUpdated {
  /**
   * The settings that changed (`turnMode`, `assistantEnabled`, `extensions`, `blocklist`).
   */
  changed: string[];
  chatId: string;
  settings: ChatSettings;
  updatedAt: string;
  updatedBy: string;
}
/**
 * `chat.ai.requested`: the assistant should answer (its EventBridge rule invokes it).
 */
export interface AiRequested {
  chatId: string;
  /**
   * The message it answers.
   */
  messageId: string;
  requestId: string;
  requestedAt: string;
  requestedBy: string;
}
/**
 * `chat.ai.started`: the assistant is working on a request.
 */
export interface AiStarted {
  chatId: string;
  model: string;
  provider: string;
  requestId: string;
  startedAt: string;
}
/**
 * `chat.ai.completed`: the reply is stored as message `messageId`.
 */
export interface AiCompleted {
  chatId: string;
  completedAt: string;
  messageId: string;
  model: string;
  provider: string;
  requestId: string;
  /**
   * How long the provider took.
   */
  responseTimeMs: number;
  /**
   * From the request to the stored reply.
   */
  totalTimeMs: number;
}
/**
 * `chat.ai.failed`: no reply; the turn moved on to the next user.
 */
export interface AiFailed {
  chatId: string;
  /**
   * `provider_error`, `timeout`, `empty_reply`, `turn_moved_on`.
   */
  code: string;
  error: string;
  failedAt: string;
  provider: string;
  requestId: string;
  responseTimeMs: number;
}
/**
 * `trip.created`: a trip was created (logged on its channel, seen by the admin stream).
 */
export interface TripCreated {
  departureTime: string;
  organizerId: string;
  status: TripStatus;
  title: string;
  totalSeats: number;
  tripId: string;
  tripType: TripType;
}
/**
 * `trip.status.updated`: one step of the trip's lifecycle (also the SSE `status_update`).
 */
export interface TripStatusUpdated {
  destName: string;
  driverId?: string | null;
  driverName?: string | null;
  newStatus: TripStatus;
  notes?: string | null;
  originName: string;
  previousStatus: TripStatus;
  tripId: string;
  tripTitle: string;
  updatedAt: string;
  updatedBy: string;
}
/**
 * `trip.offer.created`: a private trip waits for a driver. Drivers filter on `distanceKm`,
 * `estimatedEarnings` and `tripType` (`driver:subscribe`). The organizer is not named.
 */
export interface TripOfferCreated {
  /**
   * Until when a driver should accept (see `offer::acceptance_deadline`).
   */
  acceptanceDeadline: string;
  departureTime: string;
  destination: Place;
  /**
   * Great-circle distance, km, one decimal (see `offer::haversine_km`).
   */
  distanceKm: number;
  /**
   * `pricePerSeat × totalSeats` (see `offer::estimated_earnings`).
   */
  estimatedEarnings: number;
  origin: Place;
  pricePerSeat: number;
  title: string;
  totalSeats: number;
  tripId: string;
  tripType: TripType;
  /**
   * `high` (departs within 2 h), `medium` (within 24 h) or `low`.
   */
  urgency: string;
}
export interface Place {
  lat: number;
  lng: number;
  name: string;
}
/**
 * `booking.confirmed`: seats were booked (held for the passenger). `bookingStatus` is
 * `CONFIRMED` when the trip has a driver, else `PENDING` until a driver accepts.
 */
export interface BookingConfirmed {
  availableSeats: number;
  bookingId: string;
  bookingStatus: string;
  passengerId: string;
  passengerName: string;
  seatsBooked: number;
  totalSeats: number;
  tripId: string;
  tripType: TripType;
}
/**
 * `booking.cancelled`: a booking was cancelled and its seats given back.
 */
export interface BookingCancelled {
  availableSeats: number;
  bookingId: string;
  passengerId: string;
  passengerName: string;
  reason?: string | null;
  seatsFreed: number;
  totalSeats: number;
  tripId: string;
  tripType: TripType;
}
export interface ConnectionChanged {
  connectionId: string;
  userId: string;
}
/**
 * `presence.joined` / `presence.left`: who joined (or left) the channel since the last
 * announcement, all of them in one event, and the occupancy after it.
 */
export interface PresenceChanged {
  channel: string;
  members: Member[];
  occupancy: number;
}
/**
 * One member: a user, with how many of their connections are subscribed.
 */
export interface Member {
  /**
   * When their earliest connection still here opened.
   */
  connectedAt: string;
  connections: number;
  displayName: string;
  role: string;
  userId: string;
}
/**
 * `channel.occupied` (its first member came) / `channel.vacated` (its last one left).
 */
export interface ChannelLifecycle {
  channel: string;
  occupancy: number;
}
