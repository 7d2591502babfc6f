from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from aggregation.apis import DayDetailApi, DayListApi, MetricLatenessApi, MetricListApi
from events.apis import EventDetailApi, EventIngestApi, HealthApi
from snapshots.apis import SnapshotEventsApi, SnapshotRunApi

api_urlpatterns = [
    path("api/events/", EventIngestApi.as_view(), name="api-events"),
    path("api/events/<path:event_id>/", EventDetailApi.as_view(), name="api-event-detail"),
    path("api/metrics/", MetricListApi.as_view(), name="api-metrics"),
    path(
        "api/metrics/<str:name>/lateness/", MetricLatenessApi.as_view(), name="api-metric-lateness"
    ),
    path("api/days/", DayListApi.as_view(), name="api-days"),
    path("api/days/<str:metric>/<str:day>/", DayDetailApi.as_view(), name="api-day-detail"),
    path(
        "api/days/<str:metric>/<str:day>/snapshots/<int:sequence>/events/",
        SnapshotEventsApi.as_view(),
        name="api-snapshot-events",
    ),
    path("api/snapshots/run/", SnapshotRunApi.as_view(), name="api-snapshots-run"),
    path("api/health/", HealthApi.as_view(), name="api-health"),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[AllowAny]),
        name="api-schema",
    ),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    *api_urlpatterns,
]

handler404 = "snapagg_project.api_errors.page_not_found"
handler500 = "snapagg_project.api_errors.server_error"
