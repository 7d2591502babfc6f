from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from aggregation.apis import MetricDetailApi, MetricListApi
from alerts.apis import AlertListApi
from alerts.views import AlertListView
from archive.apis import ArchiveRunApi, EventDetailApi
from events.apis import EventIngestApi, MetricLatenessApi
from events.views import BatchView, CsvUploadView, EventPostView, IngestResultView
from snapagg_project.api_docs import LocalRedocView
from snapshots.apis import DayDetailApi, DayListApi, SnapshotEventsApi
from snapshots.slice_apis import AggregatesApi, SourceListApi
from snapshots.views import DayView, SnapshotChangesView
from web.apis import HealthApi, SnapshotRunApi
from web.metrics import PrometheusMetricsApi
from web.slice_views import PeriodsView, SourcesView
from web.views import (
    DashboardView,
    OperationsView,
    RequeueStuckBatchesView,
    SnapshotIntervalView,
    SnapshotRunNowView,
)

api_urlpatterns = [
    path("api/events/", EventIngestApi.as_view(), name="api-events"),
    path("api/events/<path:event_id>/", EventDetailApi.as_view(), name="api-event-detail"),
    path("api/metrics/", MetricListApi.as_view(), name="api-metrics"),
    path("api/metrics/<str:name>/", MetricDetailApi.as_view(), name="api-metric-detail"),
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
    path("api/aggregates/", AggregatesApi.as_view(), name="api-aggregates"),
    path("api/sources/", SourceListApi.as_view(), name="api-sources"),
    path("api/snapshots/run/", SnapshotRunApi.as_view(), name="api-snapshots-run"),
    path("api/archive/run/", ArchiveRunApi.as_view(), name="api-archive-run"),
    path("api/health/", HealthApi.as_view(), name="api-health"),
    path("api/alerts/", AlertListApi.as_view(), name="api-alerts"),
    path("metrics", PrometheusMetricsApi.as_view(), name="prometheus-metrics"),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[AllowAny]),
        name="api-schema",
    ),
    # The schema as a page (Swagger UI from local static files), public like the schema.
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(
            url_name="api-schema",
            template_name="api/swagger_ui.html",
            authentication_classes=[],
            permission_classes=[AllowAny],
        ),
        name="api-docs",
    ),
    # The same schema as one reference page (Redoc), from local files only.
    path(
        "api/redoc/",
        LocalRedocView.as_view(),
        name="api-redoc",
    ),
]

page_urlpatterns = [
    path("", DashboardView.as_view(), name="dashboard"),
    path("days/<str:metric>/<str:day>/", DayView.as_view(), name="day-detail"),
    path(
        "days/<str:metric>/<str:day>/snapshots/<int:sequence>/",
        SnapshotChangesView.as_view(),
        name="snapshot-changes",
    ),
    path("periods/", PeriodsView.as_view(), name="periods"),
    path("sources/", SourcesView.as_view(), name="sources"),
    path("events/new/", EventPostView.as_view(), name="event-post"),
    path("events/upload/", CsvUploadView.as_view(), name="event-upload"),
    path("events/results/<str:key>/", IngestResultView.as_view(), name="event-result"),
    path("events/batches/<int:batch_id>/", BatchView.as_view(), name="batch-detail"),
    path("operations/", OperationsView.as_view(), name="operations"),
    path("operations/snapshot-run/", SnapshotRunNowView.as_view(), name="operations-snapshot-run"),
    path(
        "operations/snapshot-interval/", SnapshotIntervalView.as_view(), name="operations-interval"
    ),
    path("operations/requeue/", RequeueStuckBatchesView.as_view(), name="operations-requeue"),
    path("alerts/", AlertListView.as_view(), name="alerts"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    *api_urlpatterns,
    *page_urlpatterns,
]

handler404 = "common.api_errors.page_not_found"
handler500 = "common.api_errors.server_error"
